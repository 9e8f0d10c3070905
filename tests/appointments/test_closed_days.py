"""A booking on a day the hall closed after it was made (a typhoon): the sweeper tells the citizen
and the booking is cancelled by the hall (`hall_closed`): its place given back, no longer active,
never a no-show, even when the closure is taken back later; the citizen may move it once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.db import db
from tests.api.v1.applications.conftest import key, relogin
from tests.appointments.conftest import URL, book, make_hall, next_working_day, slots
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator


def _editor(app: Any, client: Any) -> dict:
    return admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))


def _close_day(client: Any, editor: dict, day: Any) -> str:
    body = {"date": day.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}
    made = client.post("/admin/v1/calendar/overrides", json=body, headers=editor | key())
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]


def _sweep() -> dict:
    from workers.sweeper import appointment_pass

    done = appointment_pass(db.session())
    db.session.remove()
    return done


def _clock_to(clock: Any, iso: str, minutes: float = 0) -> None:
    clock.advance(datetime.fromisoformat(iso).timestamp() + minutes * 60 - clock.time())


def _working_day_after(app: Any, day: Any) -> Any:
    from core import clock as clock_mod
    from domain.appointments.service import BEIJING

    return next_working_day(app, after=(day - clock_mod.now().astimezone(BEIJING).date()).days + 1)


def _move(client: Any, who: dict, appointment_id: str, slot_id: str) -> Any:
    return client.post(
        f"{URL}/{appointment_id}/reschedule", json={"slot_id": slot_id}, headers=who["headers"]
    )


def _status(client: Any, who: dict, appointment_id: str) -> str:
    got = client.get(f"{URL}/{appointment_id}", headers=who["headers"])
    assert got.status_code == 200, got.get_json()
    return got.get_json()["status"]


def test_the_hall_closing_the_day_cancels_the_booking_and_gives_its_place_back(
    app: Any, client: Any, hall: str
) -> None:
    who = make_citizen(app)
    day = next_working_day(app)
    slot = slots(client, who, hall, day).get_json()[0]
    booked = book(client, who, slot["id"]).get_json()
    editor = _editor(app, client)
    override = _close_day(client, editor, day)
    assert _sweep()["appointments_closed_told"] == 1
    # The list and the booking no longer show an upcoming visit.
    assert [a["status"] for a in client.get(URL, headers=who["headers"]).get_json()] == ["hall_closed"]
    assert _status(client, who, booked["id"]) == "hall_closed"
    code = client.get(f"{URL}/{booked['id']}/check-in-code", headers=who["headers"])
    assert code.status_code == 409 and code.get_json()["error"]["code"] == "appointments.cancelled_by_hall"
    assert "暂停办公" in code.get_json()["error"]["message"]
    en = client.get(f"{URL}/{booked['id']}/check-in-code", headers=who["headers"] | {"Accept-Language": "en"})
    assert "closed" in en.get_json()["error"]["message"]
    # Cancelling it changes nothing: the place is already back.
    cancelled = client.post(f"{URL}/{booked['id']}/cancel", headers=who["headers"])
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "hall_closed"
    # The closure taken back: every place is free again, and the day counts no booking of hers.
    gone = client.delete(f"/admin/v1/calendar/overrides/{override}", headers=editor | key())
    assert gone.status_code == 204
    assert slots(client, who, hall, day).get_json()[0]["available"] == slot["capacity"]
    again = book(client, who, slot["id"])
    assert again.status_code == 201, again.get_json()


def test_a_citizen_told_the_hall_is_closed_is_no_no_show_when_the_closure_is_taken_back(
    app: Any, client: Any, hall: str, clock: Any
) -> None:
    """She was told her visit cannot take place and stayed at home; the override removed later
    (an error, or the typhoon turned away) must not make that a missed appointment."""
    who = make_citizen(app)
    day = next_working_day(app)
    slot = slots(client, who, hall, day).get_json()[0]
    booked = book(client, who, slot["id"]).get_json()
    editor = _editor(app, client)
    override = _close_day(client, editor, day)
    assert _sweep()["appointments_closed_told"] == 1
    gone = client.delete(f"/admin/v1/calendar/overrides/{override}", headers=editor | key())
    assert gone.status_code == 204
    _clock_to(clock, slot["starts_at"], -23 * 60)
    assert _sweep()["appointment_reminders"] == 0  # no reminder for a visit she was told is off
    _clock_to(clock, slot["ends_at"], 31)
    assert _sweep()["no_shows"] == 0
    who = relogin(app, who)
    assert _status(client, who, booked["id"]) == "hall_closed"


def test_a_closure_after_the_time_began_still_releases_the_booking(
    app: Any, client: Any, hall: str, clock: Any
) -> None:
    """A closure entered on the day itself, after the slot began (the sweeper's first pass comes
    later): the booking does not linger as `booked` once the day is over."""
    who = make_citizen(app)
    day = next_working_day(app)
    slot = slots(client, who, hall, day).get_json()[0]
    booked = book(client, who, slot["id"]).get_json()
    _clock_to(clock, slot["starts_at"], 5)
    _close_day(client, _editor(app, client), day)
    _clock_to(clock, slot["ends_at"], 24 * 60)  # the next day
    done = _sweep()
    assert done["no_shows"] == 0
    who = relogin(app, who)
    assert _status(client, who, booked["id"]) == "hall_closed"


def test_a_booking_the_hall_cancelled_can_be_moved_once(app: Any, client: Any, hall: str) -> None:
    """The notice asks her to choose another time under My appointments: the closed booking moves
    like any other (it names its successor), and only once."""
    who = make_citizen(app)
    day = next_working_day(app)
    later = _working_day_after(app, day)
    booked = book(client, who, slots(client, who, hall, day).get_json()[0]["id"]).get_json()
    _close_day(client, _editor(app, client), day)
    _sweep()
    target, spare = slots(client, who, hall, later).get_json()[:2]
    moved = _move(client, who, booked["id"], target["id"])
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["status"] == "booked" and moved.get_json()["day"] == later.isoformat()
    new = moved.get_json()["id"]
    mine = {a["id"]: (a["status"], a["moved_to"]) for a in client.get(URL, headers=who["headers"]).get_json()}
    assert mine == {booked["id"]: ("hall_closed", new), new: ("booked", None)}
    twice = _move(client, who, booked["id"], spare["id"])
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "appointments.not_changeable"
    listed = {s["id"]: s["available"] for s in slots(client, who, hall, later).get_json()}
    assert (listed[target["id"]], listed[spare["id"]]) == (target["available"] - 1, spare["available"])


def _miss_three(who: dict, hall: str, slot_ids: list[str], day: Any) -> None:
    """Three no-shows just now (as the sweeper marks them): booking is paused for 7 days."""
    from core import clock as clock_mod
    from domain.appointments.models import NO_SHOW, Appointment
    from tests.appointments.conftest import ITEM

    session = db.session()
    for slot_id in slot_ids:
        at = clock_mod.now()
        session.add(Appointment(account_id=who["account_id"], slot_id=slot_id, hall_id=hall,
                                service_code=ITEM, day=day, status=NO_SHOW, created_at=at,
                                updated_at=at))  # fmt: skip
    session.commit()


def test_a_paused_citizen_cannot_move_a_booking_but_may_move_one_the_hall_cancelled(
    app: Any, client: Any, hall: str
) -> None:
    """Booking is paused after three no-shows: moving a booking to another time takes a new place
    like booking does, so it is paused too (the booking stays, and may be cancelled). A booking
    the hall's closure cancelled is the hall's doing: that one may still be moved."""
    who = make_citizen(app)
    first = next_working_day(app)
    second = _working_day_after(app, first)
    third = _working_day_after(app, second)
    listed = slots(client, who, hall, first).get_json()
    held = book(client, who, listed[0]["id"]).get_json()
    closing = book(client, who, slots(client, who, hall, second).get_json()[0]["id"]).get_json()
    _miss_three(who, hall, [s["id"] for s in listed[-3:]], first)
    target = slots(client, who, hall, third).get_json()[0]

    moved = _move(client, who, held["id"], target["id"])
    assert moved.status_code == 403, moved.get_json()
    assert moved.get_json()["error"]["code"] == "appointments.booking_paused"
    assert "暂停至" in moved.get_json()["error"]["message"]
    same_day = _move(client, who, held["id"], listed[1]["id"])
    assert same_day.status_code == 403
    assert _status(client, who, held["id"]) == "booked"
    after = {s["id"]: s["available"] for s in slots(client, who, hall, first).get_json()}
    was = (listed[0]["available"] - 1, listed[1]["available"])
    assert (after[listed[0]["id"]], after[listed[1]["id"]]) == was
    assert slots(client, who, hall, third).get_json()[0]["available"] == target["available"]
    done = client.post(f"{URL}/{held['id']}/cancel", headers=who["headers"])
    assert done.status_code == 200 and done.get_json()["status"] == "cancelled"

    _close_day(client, _editor(app, client), second)
    _sweep()
    out = _move(client, who, closing["id"], target["id"])
    assert out.status_code == 200 and out.get_json()["day"] == third.isoformat(), out.get_json()


def _sweep_in_thread(app: Any) -> Any:
    def run(_client: Any) -> dict:
        with app.app_context():
            return _sweep()

    return run


def test_the_halls_release_during_a_move_waits_and_releases_nothing(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    """The sweeper's pass comes while the citizen moves the booking out of the closed day: it
    waits for the move, then finds nothing to release or tell (no "choose another time" for a
    booking already moved, no place given back twice)."""
    from domain.appointments import service
    from tests.appointments.test_races import Competitor, _places_match_bookings, _reschedule

    who, hall, day = make_citizen(app), make_hall(app), next_working_day(app)
    booked = book(client, who, slots(client, who, hall, day).get_json()[0]["id"]).get_json()
    target = slots(client, who, hall, _working_day_after(app, day)).get_json()[0]["id"]
    _close_day(client, _editor(app, client), day)
    sweep = Competitor(monkeypatch, app, service, "_active_that_day", _sweep_in_thread(app))
    moved = _reschedule(who, booked["id"], target)(client)
    assert moved.status_code == 200, moved.get_json()
    assert sweep.result()["appointments_closed_told"] == 0
    assert sweep.finished_at_once is False  # it waited for the move
    assert _status(client, who, booked["id"]) == "cancelled"
    _places_match_bookings()


def test_a_move_during_the_halls_release_waits_and_moves_the_released_booking(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    """The citizen moves the booking while the sweeper releases it: the move waits, then moves
    the booking the hall cancelled (its place is not given back a second time)."""
    from notifications import fanout
    from tests.appointments.test_races import Competitor, _places_match_bookings, _reschedule

    who, hall, day = make_citizen(app), make_hall(app), next_working_day(app)
    booked = book(client, who, slots(client, who, hall, day).get_json()[0]["id"]).get_json()
    target = slots(client, who, hall, _working_day_after(app, day)).get_json()[0]["id"]
    _close_day(client, _editor(app, client), day)
    move = Competitor(monkeypatch, app, fanout, "notify", _reschedule(who, booked["id"], target))
    assert _sweep()["appointments_closed_told"] == 1
    moved = move.result()
    assert moved.status_code == 200, moved.get_json()
    assert move.finished_at_once is False  # it waited for the release
    new = moved.get_json()["id"]
    mine = {a["id"]: (a["status"], a["moved_to"]) for a in client.get(URL, headers=who["headers"]).get_json()}
    assert mine == {booked["id"]: ("hall_closed", new), new: ("booked", None)}
    _places_match_bookings()


def test_a_slot_whose_count_drifted_below_its_bookings_gives_every_place_back_and_never_goes_negative(
    app: Any, client: Any, hall: str
) -> None:
    """Two bookings on a slot whose count says one (drifted): the release still empties it (not
    skipped, leaving a place lost for good), and the count stops at zero."""
    from sqlalchemy import update

    from domain.appointments.models import AppointmentSlot

    day = next_working_day(app)
    first, second = make_citizen(app), make_citizen(app)
    slot = slots(client, first, hall, day).get_json()[0]
    for who in (first, second):
        assert book(client, who, slot["id"]).status_code == 201
    session = db.session()
    session.execute(update(AppointmentSlot).where(AppointmentSlot.id == slot["id"]).values(booked=1))
    session.commit()
    editor = _editor(app, client)
    override = _close_day(client, editor, day)
    assert _sweep()["appointments_closed_told"] == 2
    assert db.session().get(AppointmentSlot, slot["id"]).booked == 0
    assert (
        client.delete(f"/admin/v1/calendar/overrides/{override}", headers=editor | key()).status_code == 204
    )
    assert slots(client, first, hall, day).get_json()[0]["available"] == slot["capacity"]


def _drift(slot_id: str, booked: int) -> None:
    """The slot's counter set by hand to a wrong value (an earlier fault, a manual fix)."""
    from sqlalchemy import update

    from domain.appointments.models import AppointmentSlot

    session = db.session()
    session.execute(update(AppointmentSlot).where(AppointmentSlot.id == slot_id).values(booked=booked))
    session.commit()


def _held(slot_id: str) -> int:
    from domain.appointments.models import AppointmentSlot

    db.session.remove()
    return db.session().get(AppointmentSlot, slot_id).booked


def test_the_release_keeps_the_place_of_a_citizen_already_checked_in_when_the_count_drifted(
    app: Any, client: Any, clock: Any
) -> None:
    """One citizen checked in, one still booked, the counter one short (drifted); the hall closes
    the day. The release recounts: the checked-in citizen keeps her place, so once the closure is
    taken back the slot takes one more booking, not two (never over its capacity)."""
    from tests.api.v1.applications.conftest import relogin

    hall = make_hall(app, windows=1, per_window=2)
    day = next_working_day(app)
    first, second = make_citizen(app), make_citizen(app)
    slot = slots(client, first, hall, day).get_json()[0]
    assert book(client, first, slot["id"]).status_code == 201
    mine = book(client, second, slot["id"]).get_json()
    _clock_to(clock, slot["starts_at"], -10)  # ten minutes before: check-in is open
    second = relogin(app, second)
    code = client.get(f"{URL}/{mine['id']}/check-in-code", headers=second["headers"]).get_json()["code"]
    officer = admin_headers(client, make_operator(app, username="hall-desk", roles=("hall_officer",)))
    scan = client.post(
        "/admin/v1/appointments/check-in", json={"code": code, "hall_id": hall}, headers=officer
    )
    assert scan.status_code == 200, scan.get_json()
    _drift(slot["id"], 1)
    editor = _editor(app, client)
    override = _close_day(client, editor, day)
    assert _sweep()["appointments_closed_told"] == 1  # the one still booked; not the one checked in
    assert _held(slot["id"]) == 1
    assert (
        client.delete(f"/admin/v1/calendar/overrides/{override}", headers=editor | key()).status_code == 204
    )
    late = make_citizen(app)
    assert slots(client, late, hall, day).get_json()[0]["available"] == 1
    assert book(client, late, slot["id"]).status_code == 201
    full = book(client, make_citizen(app), slot["id"])
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "appointments.slot_full"


def test_a_slot_whose_count_drifted_above_its_bookings_gives_every_place_back(
    app: Any, client: Any, hall: str
) -> None:
    """One booking on a slot whose counter says it is full (drifted): releasing it frees every
    place, not one (the others would be lost for good)."""
    day = next_working_day(app)
    who = make_citizen(app)
    slot = slots(client, who, hall, day).get_json()[0]
    assert book(client, who, slot["id"]).status_code == 201
    _drift(slot["id"], slot["capacity"])
    editor = _editor(app, client)
    override = _close_day(client, editor, day)
    assert _sweep()["appointments_closed_told"] == 1
    assert _held(slot["id"]) == 0
    assert (
        client.delete(f"/admin/v1/calendar/overrides/{override}", headers=editor | key()).status_code == 204
    )
    assert slots(client, who, hall, day).get_json()[0]["available"] == slot["capacity"]


def test_a_place_claimed_while_the_release_recounts_the_slot_is_kept(
    app: Any, client: Any, hall: str, monkeypatch: Any
) -> None:
    """The closure is taken back and a citizen claims the slot while the sweeper is about to
    recount it: the recount waits for that claim and counts it, so the slot never shows a place
    free that a booking holds (the next citizen would be booked over capacity)."""
    import threading
    import time
    import uuid

    import pytest
    from sqlalchemy import text

    from domain.appointments import visits

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no claim can commit during the recount")
    who, late = make_citizen(app), make_citizen(app)
    day = next_working_day(app)
    slot = slots(client, who, hall, day).get_json()[0]
    assert book(client, who, slot["id"]).status_code == 201
    _close_day(client, _editor(app, client), day)
    mine = (
        db.session()
        .execute(
            text("SELECT hall_id, service_code, day FROM appointments WHERE slot_id = :s"), {"s": slot["id"]}
        )
        .one()
    )
    db.session.remove()
    other = db.engine.connect()
    recount = visits.recount_places

    def claimed_meanwhile(session: Any, slot_id: str) -> None:
        # The release's UPDATE of the bookings is done: the closure is taken back and the place
        # claimed (count, then the booking), committed a moment after the recount began.
        other.execute(text("UPDATE appointment_slots SET closed = false WHERE id = :s"), {"s": slot_id})
        other.commit()
        other.execute(text("UPDATE appointment_slots SET booked = booked + 1 WHERE id = :s"), {"s": slot_id})
        other.execute(
            text(
                "INSERT INTO appointments (id, account_id, slot_id, hall_id, service_code, day,"
                " status, created_at, updated_at)"
                " VALUES (:id, :account, :s, :hall, :code, :day, 'booked', now(), now())"
            ),
            {
                "id": str(uuid.uuid4()),
                "account": late["account_id"],
                "s": slot_id,
                "hall": mine.hall_id,
                "code": mine.service_code,
                "day": mine.day,
            },  # fmt: skip
        )
        threading.Thread(target=lambda: (time.sleep(1.0), other.commit())).start()
        time.sleep(0.2)
        recount(session, slot_id)

    monkeypatch.setattr(visits, "recount_places", claimed_meanwhile)
    try:
        _sweep()
    finally:
        monkeypatch.undo()
        other.close()
    assert _held(slot["id"]) == 1  # the late citizen's place; the first booking was released
