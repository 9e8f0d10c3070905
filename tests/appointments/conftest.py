"""Fixtures for appointments: a hall open on weekdays, the next working day, citizens."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from core import clock as clock_mod

URL = "/v1/appointments"
ITEM = "11440100007504956C3000110001000"  # 社会保障卡申领
WEEKDAYS = {str(d): [["09:00", "12:00"], ["13:30", "17:00"]] for d in range(1, 6)}


def make_hall(
    app: Any,
    *,
    windows: int = 1,
    per_window: int = 2,
    items: tuple[str, ...] = (ITEM,),
    hours: dict | None = None,
) -> str:
    from core.db import db
    from domain.appointments.models import Hall

    session = db.session()
    hall = Hall(
        name="天河区政务服务中心", address="广州市天河区天河路 1 号", region="440106",
        opening_hours=hours or WEEKDAYS, windows=windows, service_codes=list(items), slot_minutes=30,
        capacity_per_window=per_window,
        created_at=clock_mod.now(),
    )  # fmt: skip
    session.add(hall)
    session.commit()
    return hall.id


def next_working_day(app: Any, after: int = 1) -> date:
    from core.db import db
    from domain.appointments.service import BEIJING
    from domain.calendar import service as calendar

    day = clock_mod.now().astimezone(BEIJING).date() + timedelta(days=after)
    while not calendar.is_working_day(db.session(), day, region="440106"):
        day += timedelta(days=1)
    return day


def next_weekend_day(app: Any) -> date:
    from domain.appointments.service import BEIJING

    day = clock_mod.now().astimezone(BEIJING).date() + timedelta(days=1)
    while day.isoweekday() < 6:
        day += timedelta(days=1)
    return day


@pytest.fixture
def hall(app: Any) -> str:
    return make_hall(app)


def slots(client: Any, who: dict, hall_id: str, day: date, item: str = ITEM) -> Any:
    return client.get(
        f"/v1/services/{item}/slots?hall={hall_id}&date={day.isoformat()}", headers=who["headers"]
    )


def book(client: Any, who: dict, slot_id: str, **hdr: str) -> Any:
    return client.post(URL, json={"slot_id": slot_id}, headers=who["headers"] | hdr)
