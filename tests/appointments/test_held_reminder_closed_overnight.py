"""A reminder held for the quiet hours goes out at 07:00 for a day the hall closed during
the night, when the sweeper's release of the day's bookings has not run yet (it runs once per
HOUSEKEEPING_INTERVAL): "please bring your ID at 09:00" to a shut hall, followed minutes later by
"the hall is closed that day". A reminder is not even created for a closed day (due_reminders);
one held must not be sent for one either."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from domain.appointments.service import BEIJING
from tests.api.v1.applications.conftest import key, seeded  # noqa: F401 - fixture
from tests.appointments.test_held_reminders import _booked_at_night, _reminders
from tests.notifications.conftest import Sim, apns, daytime, person, run_notifier, states  # noqa: F401 - fixtures


def test_a_held_reminder_is_not_sent_for_a_day_the_hall_closed_overnight(
    app: Any,
    client: Any,
    person: dict,  # noqa: F811
    hall: str,
    apns: Sim,  # noqa: F811
    daytime: Any,  # noqa: F811
    seeded: None,  # noqa: F811
) -> None:
    from tests.domain.operators.factories import admin_headers, make_operator

    who, booked, _ = _booked_at_night(app, client, person, hall, daytime)
    day = datetime.fromisoformat(booked["starts_at"]).astimezone(BEIJING).date()
    dawn = datetime.combine(day, time(6, 30), tzinfo=BEIJING)
    daytime.advance((dawn - daytime.now()).total_seconds())
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    body = {"date": day.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}
    assert client.post("/admin/v1/calendar/overrides", json=body, headers=editor | key()).status_code == 201
    daytime.advance(timedelta(minutes=35).total_seconds())  # 07:05, before the sweeper's next pass
    run_notifier(app)
    [note] = _reminders(person["account_id"])
    assert apns.get("notifications") == [], states(app, note.id)
