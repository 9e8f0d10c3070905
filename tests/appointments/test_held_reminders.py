"""An appointment reminder held for the quiet hours (a booking made late in the evening for the
next morning) follows what the citizen did meanwhile: a booking cancelled or moved overnight is
not announced at 07:00 with a time that no longer holds, nor one on a day the hall closed in the
night."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from core.db import db
from domain.appointments.service import BEIJING
from tests.api.v1.applications.conftest import key, relogin, seeded  # noqa: F401 - fixture
from tests.appointments.conftest import URL, book, next_working_day, slots
from tests.notifications.conftest import Sim, apns, daytime, person, register_device, run_notifier, states  # noqa: F401 - fixtures


def _reminders(account_id: str) -> list[Any]:
    from notifications.models import Notification

    db.session.remove()
    return list(
        db.session.query(Notification)
        .filter_by(account_id=account_id, event_type="appointment_reminder")
        .order_by(Notification.created_at)
    )


def _booked_at_night(app: Any, client: Any, who: dict, hall: str, clock: Any) -> tuple[dict, dict, list]:
    """A booking made at 22:30 Beijing for 09:00 the next morning, and its reminder, held."""
    from workers.sweeper import appointment_pass

    register_device(client, who)
    day = next_working_day(app)
    night = datetime.combine(day - timedelta(days=1), time(22, 30), tzinfo=BEIJING)
    clock.advance((night - clock.now()).total_seconds())
    who = relogin(app, who)
    listed = slots(client, who, hall, day).get_json()
    booked = book(client, who, listed[0]["id"])
    assert booked.status_code == 201, booked.get_json()
    assert appointment_pass(db.session())["appointment_reminders"] == 1
    run_notifier(app)
    [note] = _reminders(who["account_id"])
    assert states(app, note.id) == {"apns": "created"}  # held until 07:00
    return who, booked.get_json(), listed


def test_a_held_reminder_is_not_sent_once_the_booking_was_cancelled(
    app: Any,
    client: Any,
    person: dict,  # noqa: F811
    hall: str,
    apns: Sim,  # noqa: F811
    daytime: Any,  # noqa: F811
    seeded: None,  # noqa: F811
) -> None:
    who, booked, _ = _booked_at_night(app, client, person, hall, daytime)
    daytime.advance(minutes=20)
    who = relogin(app, who)
    assert client.post(f"{URL}/{booked['id']}/cancel", headers=who["headers"]).status_code == 200
    daytime.advance(hours=9)  # 07:50
    run_notifier(app)
    assert apns.get("notifications") == []
    [note] = _reminders(person["account_id"])
    ended = states(app, note.id)
    assert ended == {"apns": "permanent_failure"} and ended.errors["apns"][0] == "not_needed", ended


def test_a_held_reminder_of_a_moved_booking_gives_way_to_the_new_time(
    app: Any,
    client: Any,
    person: dict,  # noqa: F811
    hall: str,
    apns: Sim,  # noqa: F811
    daytime: Any,  # noqa: F811
    seeded: None,  # noqa: F811
) -> None:
    from workers.sweeper import appointment_pass

    who, booked, listed = _booked_at_night(app, client, person, hall, daytime)
    daytime.advance(minutes=20)
    who = relogin(app, who)
    moved = client.post(
        f"{URL}/{booked['id']}/reschedule", json={"slot_id": listed[2]["id"]}, headers=who["headers"]
    )
    assert moved.status_code == 200, moved.get_json()
    assert appointment_pass(db.session())["appointment_reminders"] == 1  # the new time's, held too
    daytime.advance(hours=9)  # 07:50
    run_notifier(app)
    sent = apns.get("notifications")
    assert len(sent) == 1, sent
    new_time = datetime.fromisoformat(listed[2]["starts_at"]).astimezone(BEIJING).strftime("%H:%M")
    assert new_time in str(sent[0]), sent


def test_a_held_closure_notice_is_not_sent_once_the_booking_was_moved(
    app: Any,
    client: Any,
    person: dict,  # noqa: F811
    hall: str,
    apns: Sim,  # noqa: F811
    daytime: Any,  # noqa: F811
    seeded: None,  # noqa: F811
) -> None:
    """A typhoon closure entered at 22:30: the notice "choose another time" waits for 07:00; a
    citizen who saw it in the app and moved the booking that night is not asked again."""
    from notifications.models import Notification
    from tests.api.v1.applications.conftest import key
    from tests.domain.operators.factories import admin_headers, make_operator
    from workers.sweeper import appointment_pass

    register_device(client, person)
    day = next_working_day(app, after=2)
    later = next_working_day(app, after=(day - daytime.now().astimezone(BEIJING).date()).days + 1)
    booked = book(client, person, slots(client, person, hall, day).get_json()[0]["id"]).get_json()
    night = datetime.combine(day - timedelta(days=1), time(22, 30), tzinfo=BEIJING)
    daytime.advance((night - daytime.now()).total_seconds())
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    body = {"date": day.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}
    assert client.post("/admin/v1/calendar/overrides", json=body, headers=editor | key()).status_code == 201
    assert appointment_pass(db.session())["appointments_closed_told"] == 1
    run_notifier(app)
    db.session.remove()
    [note] = db.session.query(Notification).filter_by(
        account_id=person["account_id"], event_type="appointment_closed"
    )
    assert states(app, note.id) == {"apns": "created"}  # held until 07:00
    who = relogin(app, person)
    target = slots(client, who, hall, later).get_json()[0]["id"]
    moved = client.post(f"{URL}/{booked['id']}/reschedule", json={"slot_id": target}, headers=who["headers"])
    assert moved.status_code == 200, moved.get_json()
    daytime.advance(hours=9)  # 07:30
    run_notifier(app)
    assert apns.get("notifications") == []
    ended = states(app, note.id)
    assert ended == {"apns": "permanent_failure"} and ended.errors["apns"][0] == "not_needed", ended


def test_a_held_reminder_is_not_sent_for_a_day_the_hall_closed_overnight(
    app: Any,
    client: Any,
    person: dict,  # noqa: F811
    hall: str,
    apns: Sim,  # noqa: F811
    daytime: Any,  # noqa: F811
    seeded: None,  # noqa: F811
) -> None:
    """The hall closed the day at 06:30, before the sweeper's next pass released the booking (once
    per HOUSEKEEPING_INTERVAL): no "bring your ID at 09:00" to a shut hall at 07:05. A reminder
    is not even created for a closed day (due_reminders); one held is not sent for one either."""
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
