"""The visit: QR check-in with a queue number, no-shows, reminders through notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.appointments.service import BEIJING
from tests.api.v1.applications.conftest import seeded  # noqa: F401 - fixture
from tests.appointments.conftest import book, make_hall, next_working_day, slots
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator


def _at_slot(clock: Any, starts_at: str, minutes: float = 0) -> None:
    target = datetime.fromisoformat(starts_at).timestamp() + minutes * 60
    clock.advance(target - clock.time())


def test_check_in_from_the_qr_code_gives_a_queue_number(app: Any, client: Any, hall: str, clock: Any) -> None:
    day = next_working_day(app)
    people = [make_citizen(app) for _ in range(2)]
    slot = slots(client, people[0], hall, day).get_json()[0]
    booked = [book(client, p, slot["id"]).get_json() for p in people]
    _at_slot(clock, slot["starts_at"], -10)  # ten minutes early
    officer = admin_headers(client, make_operator(app, username="hall-desk", roles=("hall_officer",)))
    numbers = []
    for who, appt in zip(people, booked, strict=True):
        fresh = make_citizen(app)  # a token valid at the new time (the test clock moved days)
        code_resp = client.get(f"/v1/appointments/{appt['id']}/check-in-code", headers=fresh["headers"])
        assert code_resp.status_code == 404  # someone else's appointment
        from tests.api.v1.applications.conftest import relogin

        mine = relogin(app, who)
        code = client.get(f"/v1/appointments/{appt['id']}/check-in-code", headers=mine["headers"]).get_json()[
            "code"
        ]
        done = client.post(
            "/admin/v1/appointments/check-in", json={"code": code, "hall_id": hall}, headers=officer
        )
        assert done.status_code == 200, done.get_json()
        numbers.append(done.get_json()["queue_no"])
        again = client.post(
            "/admin/v1/appointments/check-in", json={"code": code, "hall_id": hall}, headers=officer
        )
        assert again.get_json()["queue_no"] == numbers[-1]
        # Opening the QR code again in the queue: told the number, not "outside the check-in time".
        reopened = client.get(f"/v1/appointments/{appt['id']}/check-in-code", headers=mine["headers"])
        assert (
            reopened.status_code == 409
            and reopened.get_json()["error"]["code"] == "appointments.already_checked_in"
        )
        assert numbers[-1] in reopened.get_json()["error"]["message"]
    assert numbers == ["A001", "A002"]
    forged = client.post(
        "/admin/v1/appointments/check-in", json={"code": code[:-2] + "xx", "hall_id": hall}, headers=officer
    )
    assert forged.status_code == 422 and forged.get_json()["error"]["code"] == "appointments.bad_code"
    # Another service's QR code, with Chinese in it: the same answer, not a 500.
    foreign = client.post(
        "/admin/v1/appointments/check-in",
        json={"code": "预约码.1234.签名错误", "hall_id": hall},
        headers=officer,
    )
    assert foreign.status_code == 422 and foreign.get_json()["error"]["code"] == "appointments.bad_code"


def test_check_in_needs_the_officers_hall_and_refuses_another_halls_booking(
    app: Any, client: Any, hall: str, clock: Any
) -> None:
    from core.db import db
    from domain.appointments.models import Appointment
    from tests.api.v1.applications.conftest import relogin

    other_hall = make_hall(app)
    day = next_working_day(app)
    who = make_citizen(app)
    slot = slots(client, who, hall, day).get_json()[0]
    booked = book(client, who, slot["id"]).get_json()
    _at_slot(clock, slot["starts_at"], -10)
    officer = admin_headers(client, make_operator(app, username="hall-desk", roles=("hall_officer",)))
    who = relogin(app, who)
    code = client.get(f"/v1/appointments/{booked['id']}/check-in-code", headers=who["headers"]).get_json()[
        "code"
    ]
    url = "/admin/v1/appointments/check-in"
    no_hall = client.post(url, json={"code": code}, headers=officer)
    assert no_hall.status_code == 422 and "hall_id" in no_hall.get_json()["error"]["fields"]
    unknown = client.post(url, json={"code": code, "hall_id": "no-such-hall"}, headers=officer)
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "appointments.hall_not_found"
    elsewhere = client.post(url, json={"code": code, "hall_id": other_hall}, headers=officer)
    assert elsewhere.status_code == 409, elsewhere.get_json()
    error = elsewhere.get_json()["error"]
    assert error["code"] == "appointments.other_hall" and "天河区政务服务中心" in error["message"]
    en = client.post(
        url, json={"code": code, "hall_id": other_hall}, headers=officer | {"Accept-Language": "en"}
    )
    assert "another hall" in en.get_json()["error"]["message"]
    db.session.remove()
    stored = db.session.get(Appointment, booked["id"])
    assert (stored.status, stored.queue_no) == ("booked", None)  # not checked in anywhere
    here = client.post(url, json={"code": code, "hall_id": hall}, headers=officer)
    assert here.status_code == 200 and here.get_json()["queue_no"] == "A001", here.get_json()


def test_missed_appointments_become_no_shows_and_reminders_reach_the_inbox(
    app: Any,
    client: Any,
    hall: str,
    clock: Any,
    seeded: None,  # noqa: F811
) -> None:
    from core.db import db
    from domain.appointments.models import Appointment
    from notifications.models import Notification
    from workers.sweeper import appointment_pass

    day = next_working_day(app)
    who = make_citizen(app)
    slot = slots(client, who, hall, day).get_json()[0]
    appt = book(client, who, slot["id"]).get_json()
    _at_slot(clock, slot["starts_at"], -23 * 60)  # the day before
    assert appointment_pass(db.session())["appointment_reminders"] == 1
    assert appointment_pass(db.session())["appointment_reminders"] == 0  # once
    _at_slot(clock, slot["starts_at"], -50)  # within the hour
    assert appointment_pass(db.session())["appointment_reminders"] == 1
    db.session.remove()
    notes = list(db.session.query(Notification).filter_by(account_id=who["account_id"]))
    titles = [n.body for n in notes]
    assert len(titles) == 2 and all("天河区政务服务中心" in t and "社会保障卡" in t for t in titles)
    # Tapping the reminder opens the booking; anyone else's, or no booking, is 404.
    from tests.api.v1.applications.conftest import relogin

    who, other = relogin(app, who), make_citizen(app)
    assert {n.link for n in notes} == {f"/v1/appointments/{appt['id']}"}
    english = client.get("/v1/notifications", headers=who["headers"] | {"Accept-Language": "en"}).get_json()
    when = datetime.fromisoformat(slot["starts_at"]).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    assert all(when in item["body"] and "月" not in item["body"] for item in english["items"]), english
    opened = client.get(notes[0].link, headers=who["headers"])
    assert opened.status_code == 200 and opened.get_json() == appt | {"status": "booked"}
    for headers, path in (
        (other["headers"], notes[0].link),
        (who["headers"], "/v1/appointments/" + "9" * 300),
    ):
        missing = client.get(path, headers=headers)
        assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "appointments.not_found"
    _at_slot(clock, slot["ends_at"], 31)
    assert appointment_pass(db.session())["no_shows"] == 1
    db.session.remove()
    assert db.session.get(Appointment, appt["id"]).status == "no_show"


def _scanned_code(app: Any, client: Any, hall: str, clock: Any) -> tuple[str, str]:
    """A booking at `hall`, the clock ten minutes before its slot, and its QR code."""
    from tests.api.v1.applications.conftest import relogin

    who = make_citizen(app)
    slot = slots(client, who, hall, next_working_day(app)).get_json()[0]
    booked = book(client, who, slot["id"]).get_json()
    _at_slot(clock, slot["starts_at"], -10)
    who = relogin(app, who)
    code = client.get(f"/v1/appointments/{booked['id']}/check-in-code", headers=who["headers"]).get_json()
    return booked["id"], code["code"]


def test_an_officer_tied_to_halls_checks_in_only_at_them(
    app: Any, client: Any, hall: str, clock: Any
) -> None:
    from core.db import db
    from domain.appointments.models import Appointment

    elsewhere = make_hall(app)
    booking, code = _scanned_code(app, client, hall, clock)
    url = "/admin/v1/appointments/check-in"
    # Tied to another hall: the booked hall is out of scope, whatever the scanner sends.
    desk = make_operator(app, username="other-desk", roles=("hall_officer",), hall_ids=(elsewhere,))
    other = admin_headers(client, desk)
    refused = client.post(url, json={"code": code, "hall_id": hall}, headers=other)
    assert refused.status_code == 403, refused.get_json()
    error = refused.get_json()["error"]
    assert error["code"] == "admin.out_of_scope" and "未被分配到该办事大厅" in error["message"]
    assert error["details"] == {"hall_id": hall}
    en = client.post(url, json={"code": code, "hall_id": hall}, headers=other | {"Accept-Language": "en"})
    assert en.status_code == 403 and "not assigned to this hall" in en.get_json()["error"]["message"]
    unknown = client.post(url, json={"code": code, "hall_id": "no-such-hall"}, headers=other)
    assert unknown.status_code == 403  # not one of theirs either; says nothing about other halls
    # Its one hall is taken when the scanner sends none: the booking is for another hall (409).
    defaulted = client.post(url, json={"code": code}, headers=other)
    assert defaulted.status_code == 409 and defaulted.get_json()["error"]["code"] == "appointments.other_hall"
    db.session.remove()
    stored = db.session.get(Appointment, booking)
    assert (stored.status, stored.queue_no) == ("booked", None)  # nothing written
    # An officer of the booked hall (its only one) checks in without naming it.
    mine = admin_headers(client, make_operator(app, username="own-desk", roles=("hall_officer",),
                                               hall_ids=(hall,)))  # fmt: skip
    done = client.post(url, json={"code": code}, headers=mine)
    assert done.status_code == 200 and done.get_json()["queue_no"] == "A001", done.get_json()


def test_an_officer_of_several_halls_names_the_hall(app: Any, client: Any, hall: str, clock: Any) -> None:
    second = make_hall(app)
    _, code = _scanned_code(app, client, hall, clock)
    url = "/admin/v1/appointments/check-in"
    officer = admin_headers(client, make_operator(app, username="two-halls", roles=("hall_officer",),
                                                  hall_ids=(second, hall)))  # fmt: skip
    missing = client.post(url, json={"code": code}, headers=officer)
    assert missing.status_code == 422 and "hall_id" in missing.get_json()["error"]["fields"]
    assert missing.get_json()["error"]["code"] == "admin.hall_required"
    done = client.post(url, json={"code": code, "hall_id": hall}, headers=officer)
    assert done.status_code == 200 and done.get_json()["queue_no"] == "A001"
    # An admin (no hall assigned) still names the hall, and may name any.
    admin = admin_headers(client, make_operator(app, username="boss", roles=("admin", "hall_officer")))
    assert client.post(url, json={"code": code}, headers=admin).status_code == 422
    again = client.post(url, json={"code": code, "hall_id": hall}, headers=admin)
    assert again.status_code == 200 and again.get_json()["queue_no"] == "A001"


def _close_day(client: Any, editor: dict, day: Any) -> None:
    from tests.api.v1.applications.conftest import key

    body = {"date": day.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}
    made = client.post("/admin/v1/calendar/overrides", json=body, headers=editor | key())
    assert made.status_code == 201, made.get_json()


def _clock_to(clock: Any, iso: str, minutes: float = 0) -> None:
    clock.advance(datetime.fromisoformat(iso).timestamp() + minutes * 60 - clock.time())


def test_a_booking_on_a_day_the_hall_closed_is_neither_reminded_nor_a_no_show(
    app: Any, client: Any, hall: str, clock: Any
) -> None:
    from core.db import db
    from domain.appointments.models import Appointment
    from workers.sweeper import appointment_pass

    who = make_citizen(app)
    day = next_working_day(app)
    slot = slots(client, who, hall, day).get_json()[0]
    booked = book(client, who, slot["id"])
    assert booked.status_code == 201, booked.get_json()
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    _close_day(client, editor, day)  # a typhoon: the hall is shut that day
    _clock_to(clock, slot["starts_at"], -23 * 60)  # the day before
    assert appointment_pass(db.session())["appointment_reminders"] == 0
    _clock_to(clock, slot["ends_at"], 31)
    appointment_pass(db.session())
    db.session.remove()
    assert db.session.get(Appointment, booked.get_json()["id"]).status == "hall_closed"  # not a no-show


def test_the_citizen_is_told_once_when_the_hall_closes_on_their_booked_day(
    app: Any,
    client: Any,
    hall: str,
    clock: Any,
    seeded: None,  # noqa: F811
) -> None:
    """A typhoon closes the hall after she booked: she hears of it and is asked to choose another
    time, rather than travel to a shut hall; the citizen whose day stays open hears nothing."""
    from core.db import db
    from notifications.models import Notification
    from workers.sweeper import appointment_pass

    who, other = make_citizen(app), make_citizen(app)
    day = next_working_day(app)
    later = next_working_day(app, after=(day - next_working_day(app)).days + 2)
    slot = slots(client, who, hall, day).get_json()[0]
    assert book(client, who, slot["id"]).status_code == 201
    assert book(client, other, slots(client, other, hall, later).get_json()[0]["id"]).status_code == 201
    assert appointment_pass(db.session())["appointments_closed_told"] == 0
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    _close_day(client, editor, day)
    assert appointment_pass(db.session())["appointments_closed_told"] == 1
    assert appointment_pass(db.session())["appointments_closed_told"] == 0  # once
    db.session.remove()
    [note] = [
        n
        for n in db.session.query(Notification).filter_by(account_id=who["account_id"])
        if "暂停办公" in n.body
    ]
    when = datetime.fromisoformat(slot["starts_at"]).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    assert (
        "暂停办公" in note.body
        and "改约" in note.body
        and when in note.body
        and "天河区政务服务中心" in note.body
    )
    assert not [
        n
        for n in db.session.query(Notification).filter_by(account_id=other["account_id"])
        if "暂停" in n.body
    ]


def test_three_closed_days_do_not_pause_the_citizens_bookings(
    app: Any, client: Any, hall: str, clock: Any
) -> None:
    from core.db import db
    from tests.api.v1.applications.conftest import relogin
    from workers.sweeper import appointment_pass

    who = make_citizen(app)
    days = [next_working_day(app, after=1)]
    for _ in range(3):
        days.append(next_working_day(app, after=(days[-1] - days[0]).days + 2))
    held = [book(client, who, slots(client, who, hall, d).get_json()[0]["id"]).get_json() for d in days[:3]]
    spare = slots(client, who, hall, days[3]).get_json()[-1]
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    for d in days[:3]:
        _close_day(client, editor, d)
    for h in held:  # the sweeper runs after each closed day
        _clock_to(clock, h["starts_at"], 3 * 60)
        appointment_pass(db.session())
    who = relogin(app, who)
    again = book(client, who, spare["id"])
    assert again.status_code == 201, again.get_json()
