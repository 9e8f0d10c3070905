"""Booking a hall visit: slots from opening hours and the calendar, bad input, no overbooking."""

from __future__ import annotations

import os
import time as time_mod
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.db import db
from domain.appointments.models import AppointmentSlot
from tests.appointments.conftest import ITEM, book, make_hall, next_weekend_day, next_working_day, slots
from tests.conftest import make_citizen


def test_slots_follow_opening_hours_on_working_days(app: Any, client: Any, citizen: dict, hall: str) -> None:
    day = next_working_day(app)
    resp = slots(client, citizen, hall, day)
    assert resp.status_code == 200, resp.get_json()
    times = [s["starts_at"][11:16] for s in resp.get_json()]
    # 09:00-12:00 and 13:30-17:00 in half hours (Beijing), shown in UTC: 01:00 … and 05:30 …
    assert len(times) == 6 + 7 and times[0] == "01:00" and times[6] == "05:30"
    assert all(s["capacity"] == 2 and s["available"] == 2 for s in resp.get_json())
    again = slots(client, citizen, hall, day).get_json()
    assert [s["id"] for s in again] == [s["id"] for s in resp.get_json()]  # made once


def test_closed_days_and_unknown_halls_are_clear_answers(
    app: Any, client: Any, citizen: dict, hall: str
) -> None:
    weekend = slots(client, citizen, hall, next_weekend_day(app))
    assert weekend.status_code == 409 and weekend.get_json()["error"]["code"] == "appointments.closed"
    far = slots(client, citizen, hall, next_working_day(app, after=40))
    assert far.status_code == 422 and far.get_json()["error"]["code"] == "appointments.bad_date"
    assert slots(client, citizen, "no-such-hall", next_working_day(app)).status_code == 404
    other_item = slots(client, citizen, hall, next_working_day(app), item="11440100007502318X3000105101000")
    assert other_item.get_json()["error"]["code"] == "appointments.not_served"


def test_book_full_second_booking_and_retry(app: Any, client: Any, hall: str) -> None:
    day = next_working_day(app)
    people = [make_citizen(app) for _ in range(3)]
    slot = slots(client, people[0], hall, day).get_json()[0]["id"]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = book(client, people[0], slot, **key)
    assert first.status_code == 201, first.get_json()
    retry = book(client, people[0], slot, **key)
    assert retry.get_json()["id"] == first.get_json()["id"]  # the same booking, not a second place
    other_slot = slots(client, people[0], hall, day).get_json()[1]["id"]
    twice = book(client, people[0], other_slot)
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "appointments.already_booked"
    with db.autocommit() as conn:  # the refused try took no place
        assert (
            conn.execute(select(AppointmentSlot.booked).where(AppointmentSlot.id == other_slot)).scalar() == 0
        )
    assert book(client, people[1], slot).status_code == 201
    full = book(client, people[2], slot)
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "appointments.slot_full"
    assert slots(client, people[2], hall, day).get_json()[0]["available"] == 0
    again = book(client, people[0], slot)  # full, and booked that day already: the citizen's own rule first
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "appointments.already_booked"


def test_a_past_slot_cannot_be_booked(app: Any, client: Any, citizen: dict, hall: str, clock: Any) -> None:
    day = next_working_day(app)
    slot = slots(client, citizen, hall, day).get_json()[0]["id"]
    clock.advance(days=(day - clock.now().date()).days + 1)
    late = make_citizen(app)
    resp = book(client, late, slot)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "appointments.slot_past"


def test_todays_list_leaves_out_times_that_have_started(app: Any, client: Any, hall: str, clock: Any) -> None:
    day = next_working_day(app)
    clock._t = datetime.combine(day, time(7, 0), tzinfo=UTC).timestamp()  # 15:00 Beijing that day
    who = make_citizen(app)
    listed = slots(client, who, hall, day).get_json()
    # 09:00-12:00 and 13:30-15:00 have begun (or start right now): only 15:30 … 16:30 are offered.
    assert [s["starts_at"][11:16] for s in listed] == ["07:30", "08:00", "08:30"], listed
    assert all(datetime.fromisoformat(s["starts_at"]) > clock.now() for s in listed)
    assert book(client, who, listed[0]["id"]).status_code == 201


def test_cancel_gives_the_place_back_and_reschedule_keeps_the_old_booking_when_full(
    app: Any, client: Any, hall: str
) -> None:
    day = next_working_day(app)
    me, a, b = (make_citizen(app) for _ in range(3))
    first, second = (s["id"] for s in slots(client, me, hall, day).get_json()[:2])
    mine = book(client, me, first).get_json()
    book(client, a, second)
    book(client, b, second)  # the second slot is full now
    blocked = client.post(
        f"/v1/appointments/{mine['id']}/reschedule", json={"slot_id": second}, headers=me["headers"]
    )
    assert blocked.status_code == 409 and blocked.get_json()["error"]["code"] == "appointments.slot_full"
    assert client.get("/v1/appointments", headers=me["headers"]).get_json()[0]["status"] == "booked"
    third = slots(client, me, hall, day).get_json()[2]["id"]
    moved = client.post(
        f"/v1/appointments/{mine['id']}/reschedule", json={"slot_id": third}, headers=me["headers"]
    )
    assert moved.status_code == 200 and moved.get_json()["slot_id"] == third
    places = {s["id"]: s["available"] for s in slots(client, me, hall, day).get_json()}
    assert places[first] == 2 and places[third] == 1
    done = client.post(f"/v1/appointments/{moved.get_json()['id']}/cancel", headers=me["headers"])
    assert done.status_code == 200 and done.get_json()["status"] == "cancelled"
    assert {s["id"]: s["available"] for s in slots(client, me, hall, day).get_json()}[third] == 2
    other = client.post(f"/v1/appointments/{moved.get_json()['id']}/cancel", headers=a["headers"])
    assert other.status_code == 404


def test_three_no_shows_in_30_days_pause_booking(app: Any, client: Any, citizen: dict, hall: str) -> None:
    from core import clock as clock_mod
    from domain.appointments.models import NO_SHOW, Appointment

    day = next_working_day(app)
    listed = slots(client, citizen, hall, day).get_json()
    session = db.session()
    for slot in listed[:3]:
        session.add(Appointment(account_id=citizen["account_id"], slot_id=slot["id"], hall_id=hall,
                                service_code=ITEM, day=day, status=NO_SHOW, created_at=clock_mod.now(),
                                updated_at=clock_mod.now()))  # fmt: skip
    session.commit()
    resp = book(client, citizen, listed[4]["id"])
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "appointments.booking_paused"


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgresql"),
                    reason="the overbooking test runs against PostgreSQL")  # fmt: skip
def test_a_thousand_concurrent_bookings_fill_fifty_places_exactly(app: Any) -> None:
    from sqlalchemy import func
    from sqlalchemy.orm import sessionmaker

    from core import clock as clock_mod
    from core.db import db, make_engine
    from domain.accounts.models import Account
    from domain.appointments import service
    from domain.appointments import slots as slots_module
    from domain.appointments.errors import SlotFull
    from domain.appointments.models import Appointment

    hall = make_hall(app, windows=5, per_window=10)  # 50 places per slot
    day = next_working_day(app)
    slot_id = slots_module.slots(db.session(), service_code=ITEM, hall_id=hall, day=day)[0].id
    now = clock_mod.now()
    accounts = [str(uuid.uuid4()) for _ in range(1000)]
    session = db.session()
    session.add_all(Account(id=a, status="active", identity_level="L2", created_at=now, updated_at=now,
                            created_via="app") for a in accounts)  # fmt: skip
    session.commit()
    engine = make_engine(app.config["DATABASE_URL"], pool_size=64)
    Session = sessionmaker(bind=engine, expire_on_commit=False)

    def attempt(account_id: str) -> str:
        with Session() as s:
            try:
                service.book(s, account_id=account_id, slot_id=slot_id)
                return "booked"
            except SlotFull:
                return "full"

    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            outcomes = list(pool.map(attempt, accounts))
    finally:
        engine.dispose()
    assert outcomes.count("booked") == 50 and outcomes.count("full") == 950
    db.session.remove()
    assert db.session.get(AppointmentSlot, slot_id).booked == 50
    assert db.session.scalar(select(func.count(Appointment.id)).where(Appointment.slot_id == slot_id)) == 50


def test_a_key_sent_with_a_revoked_token_is_free_again_after_signing_in(
    app: Any, client: Any, hall: str
) -> None:
    # The key's claim rides with the token check; a refused token must not leave it in flight.
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    old = make_citizen(app, phone=phone)
    slot = slots(client, old, hall, next_working_day(app)).get_json()[0]["id"]
    app.extensions["yiwang"].revocations.revoke(old["session_id"])
    key = {"Idempotency-Key": uuid.uuid4().hex}
    refused = book(client, old, slot, **key)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "auth.session_revoked"
    again = make_citizen(app, phone=phone)
    assert again["account_id"] == old["account_id"]
    made = book(client, again, slot, **key)
    assert made.status_code == 201, made.get_json()
    replay = book(client, again, slot, **key)
    assert (
        replay.headers["Idempotent-Replayed"] == "true" and replay.get_json()["id"] == made.get_json()["id"]
    )


def _no_shows(app: Any, who: dict, hall: str, ago: list[timedelta]) -> list[dict]:
    """No-shows recorded `ago` before now; the open slots left to book, a week and more ahead."""
    from core import clock as clock_mod
    from domain.appointments.models import NO_SHOW, Appointment

    day = next_working_day(app, after=7)  # within the 14 days one can book, after the 6-day pause
    listed = slots(app.test_client(), who, hall, day).get_json()
    assert len(listed) > len(ago)
    session = db.session()
    for slot, back in zip(listed, ago, strict=False):
        at = clock_mod.now() - back
        session.add(Appointment(account_id=who["account_id"], slot_id=slot["id"], hall_id=hall,
                                service_code=ITEM, day=day, status=NO_SHOW, created_at=at,
                                updated_at=at))  # fmt: skip
    session.commit()
    return listed[len(ago) :]


def test_a_no_show_pause_lasts_until_the_date_the_citizen_is_told(
    app: Any, citizen: dict, hall: str, clock: Any
) -> None:
    """Three no-shows within 30 days pause booking for 7 days from the latest: an older one
    leaving the 30 days meanwhile does not end the pause before the date the message gave."""
    from domain.appointments import service
    from domain.appointments.errors import BookingPaused

    free = _no_shows(
        app, citizen, hall, [timedelta(days=29, hours=23), timedelta(days=29), timedelta(days=1)]
    )
    until = (clock.now() + timedelta(days=6)).astimezone(service.BEIJING).strftime("%Y-%m-%d %H:%M")

    def book_one() -> Any:
        return service.book(db.session(), account_id=citizen["account_id"], slot_id=free[0]["id"])

    # Now; two hours on (the oldest no-show has left the 30 days); the pause's last minute.
    for later in (0, 2 * 3600, 6 * 86400 - 2 * 3600 - 60):
        clock.advance(later)
        with pytest.raises(BookingPaused) as paused:
            book_one()
        assert paused.value.params["until"] == until
    clock.advance(120)
    assert book_one().status == "booked"


def test_no_shows_spread_over_more_than_30_days_do_not_pause(
    app: Any, citizen: dict, hall: str, clock: Any
) -> None:
    from domain.appointments import service

    free = _no_shows(app, citizen, hall, [timedelta(days=35), timedelta(days=20), timedelta(days=1)])
    made = service.book(db.session(), account_id=citizen["account_id"], slot_id=free[0]["id"])
    assert made.status == "booked"


def _beijing(instant: str) -> str:
    from domain.appointments.service import BEIJING

    return datetime.fromisoformat(instant).astimezone(BEIJING).strftime("%H:%M")


def _override(client: Any, app: Any, day: Any, kind: str) -> Any:
    from tests.api.v1.applications.conftest import key
    from tests.domain.operators.factories import admin_headers, make_operator

    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    body = {
        "date": day.isoformat(),
        "region": "440100",
        "kind": kind,
        "reason": "调休" if kind == "workday" else "台风停工",
    }
    made = client.post("/admin/v1/calendar/overrides", json=body, headers=editor | key())
    assert made.status_code == 201, made.get_json()
    return made


def test_a_hall_open_on_saturday_mornings_can_be_booked_then_not_on_a_closed_saturday(
    app: Any, client: Any, citizen: dict
) -> None:
    saturday_hall = make_hall(app, hours={"1": [["09:00", "17:00"]], "6": [["09:00", "12:00"]]})
    saturday = next_weekend_day(app)
    if saturday.isoweekday() != 6:
        saturday += timedelta(days=6)
    listed = slots(client, citizen, saturday_hall, saturday)
    assert listed.status_code == 200, listed.get_json()
    times = [_beijing(s["starts_at"]) for s in listed.get_json()]
    assert times[0] == "09:00" and times[-1] == "11:30"  # its Saturday hours
    assert (
        slots(client, citizen, saturday_hall, saturday + timedelta(days=1)).status_code == 409
    )  # no Sunday hours
    _override(client, app, saturday, "holiday")
    time_mod.sleep(1.1)  # lists are kept a second per process
    closed = slots(client, citizen, saturday_hall, saturday)
    assert closed.status_code == 409 and closed.get_json()["error"]["code"] == "appointments.closed"
    refused = book(client, citizen, listed.get_json()[0]["id"])
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "appointments.closed"


def test_a_weekend_made_a_working_day_opens_with_office_hours(app: Any, client: Any, citizen: dict) -> None:
    weekday_hall = make_hall(app)  # Monday to Friday only
    saturday = next_weekend_day(app)
    if saturday.isoweekday() != 6:
        saturday += timedelta(days=6)
    assert slots(client, citizen, weekday_hall, saturday).status_code == 409
    _override(client, app, saturday, "workday")  # 调休上班
    listed = slots(client, citizen, weekday_hall, saturday)
    assert listed.status_code == 200, listed.get_json()
    times = [_beijing(s["starts_at"]) for s in listed.get_json()]
    assert times[0] == "09:00" and "13:30" in times  # Monday's hours
    assert book(client, citizen, listed.get_json()[0]["id"]).status_code == 201
