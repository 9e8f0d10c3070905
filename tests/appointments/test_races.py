"""Races on one booking: cancel, reschedule and check-in of it at the same moment.

Deterministic: a function the first request runs between reading the booking and writing it is
wrapped so that it starts the competing request in another thread (its own test client and
session) and gives it a moment. Without the booking's row lock the competitor slips through in
that moment and both answer 200 (a place given back twice, two bookings out of one, a cancelled
booking checked in, two queue numbers); with it the competitor waits, then gets a clear 409 (or,
for a second scan, the same number)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import text

from core.db import db
from domain.appointments import service, visits
from tests.api.v1.applications.conftest import relogin
from tests.appointments.conftest import URL, book, make_hall, next_working_day, slots
from tests.concurrency import Competing
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator

WAIT = 1.0  # how long the first request lets the competitor run (it finishes in far less unless blocked)
CHECK_IN = "/admin/v1/appointments/check-in"


class Competitor:
    """Wraps `module.name`: its first call runs `request(client)` as a competing request
    (tests.concurrency) before (or, with after=True, after) running the real function."""

    def __init__(self, monkeypatch: Any, app: Any, module: Any, name: str, request: Callable[[Any], Any],
                 *, after: bool = False) -> None:  # fmt: skip
        self.other: Competing | None = None
        self.finished_at_once: bool | None = None
        original = getattr(module, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            if self.other is not None:
                return original(*args, **kwargs)
            result = original(*args, **kwargs) if after else None
            self.other = Competing(app, request, wait=WAIT)
            self.finished_at_once = not self.other.waited
            return result if after else original(*args, **kwargs)

        monkeypatch.setattr(module, name, hooked)

    def result(self) -> Any:
        assert self.other is not None, "the wrapped function was never called"
        return self.other.result()


def _rows(sql: str, **params: Any) -> list[Any]:
    with db.autocommit() as conn:
        return list(conn.execute(text(sql), params).all())


def _places_match_bookings() -> None:
    """Every slot's counter equals its bookings holding a place (booked, checked in, no-show:
    HOLDS_PLACE); one active booking per citizen, item and day."""
    from domain.appointments.models import HOLDS_PLACE

    holding = ", ".join(f"'{status}'" for status in HOLDS_PLACE)
    counts = _rows(
        "SELECT s.id, s.capacity, s.booked, (SELECT count(*) FROM appointments a WHERE a.slot_id = s.id"
        f" AND a.status IN ({holding})) FROM appointment_slots s"
    )
    assert all(booked == active <= capacity for _, capacity, booked, active in counts), counts
    doubled = _rows(
        "SELECT account_id, day FROM appointments WHERE status IN ('booked', 'checked_in')"
        " GROUP BY account_id, service_code, day HAVING count(*) > 1"
    )
    assert doubled == []


def _refused(resp: Any, code: str) -> None:
    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["error"]["code"] == code


def _cancel(who: dict, appointment_id: str) -> Callable[[Any], Any]:
    return lambda client: client.post(f"{URL}/{appointment_id}/cancel", headers=who["headers"])


def _reschedule(who: dict, appointment_id: str, slot_id: str) -> Callable[[Any], Any]:
    return lambda client: client.post(
        f"{URL}/{appointment_id}/reschedule", json={"slot_id": slot_id}, headers=who["headers"]
    )


def _later_day(app: Any, day: date) -> date:
    """The working day after `day`."""
    from core import clock
    from domain.appointments.service import BEIJING

    return next_working_day(app, after=(day - clock.now().astimezone(BEIJING).date()).days + 1)


def test_a_cancel_during_a_reschedule_waits_and_gives_no_place_back_twice(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    hall = make_hall(app, windows=1, per_window=2)
    day = next_working_day(app)
    me, other = make_citizen(app), make_citizen(app)
    old = slots(client, me, hall, day).get_json()[0]["id"]
    new = slots(client, me, hall, _later_day(app, day)).get_json()[0]["id"]
    mine = book(client, me, old).get_json()
    assert book(client, other, old).status_code == 201  # the old slot is full (2 of 2)
    # The reschedule runs _active_that_day after reading the booking and before writing it.
    cancel = Competitor(monkeypatch, app, service, "_active_that_day", _cancel(me, mine["id"]))
    moved = _reschedule(me, mine["id"], new)(client)
    assert moved.status_code == 200, moved.get_json()
    _refused(cancel.result(), "appointments.not_changeable")  # the booking was moved meanwhile
    assert cancel.finished_at_once is False  # it waited for the reschedule
    _places_match_bookings()
    # The move gave one place back, not two: one stranger fits in the old slot, a second does not.
    assert book(client, make_citizen(app), old).status_code == 201
    _refused(book(client, make_citizen(app), old), "appointments.slot_full")
    listed = client.get(URL, headers=me["headers"]).get_json()
    statuses = {a["slot_id"]: (a["status"], a["moved_to"]) for a in listed}
    assert statuses == {old: ("cancelled", moved.get_json()["id"]), new: ("booked", None)}


def test_a_reschedule_during_a_cancel_waits_and_is_refused(app: Any, client: Any, monkeypatch: Any) -> None:
    hall = make_hall(app, windows=1, per_window=2)
    day = next_working_day(app)
    me, other = make_citizen(app), make_citizen(app)
    listed = slots(client, me, hall, day).get_json()
    old, new = listed[0]["id"], listed[1]["id"]
    mine = book(client, me, old).get_json()
    assert book(client, other, old).status_code == 201
    # The cancel gives the place back (_release) after changing the status, before committing.
    resched = Competitor(monkeypatch, app, service, "_release", _reschedule(me, mine["id"], new))
    done = _cancel(me, mine["id"])(client)
    assert done.status_code == 200 and done.get_json()["status"] == "cancelled", done.get_json()
    _refused(resched.result(), "appointments.not_changeable")
    assert resched.finished_at_once is False
    _places_match_bookings()
    assert _rows("SELECT booked FROM appointment_slots WHERE id = :s", s=old) == [(1,)]
    assert _rows("SELECT count(*) FROM appointments WHERE account_id = :a AND status = 'booked'",
                 a=me["account_id"]) == [(0,)]  # fmt: skip
    again = _cancel(me, mine["id"])(client)  # cancelling twice is still the same answer
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled", again.get_json()
    assert again.get_json()["moved_to"] is None  # the refused reschedule moved nothing


def test_two_reschedules_of_one_booking_make_one_booking(app: Any, client: Any, monkeypatch: Any) -> None:
    hall = make_hall(app, windows=1, per_window=2)
    d1 = next_working_day(app)
    d2 = _later_day(app, d1)
    d3 = _later_day(app, d2)
    me = make_citizen(app)
    old = slots(client, me, hall, d1).get_json()[0]["id"]
    to2 = slots(client, me, hall, d2).get_json()[0]["id"]
    to3 = slots(client, me, hall, d3).get_json()[0]["id"]
    mine = book(client, me, old).get_json()
    second = Competitor(monkeypatch, app, service, "_active_that_day", _reschedule(me, mine["id"], to3))
    first = _reschedule(me, mine["id"], to2)(client)
    assert first.status_code == 200 and first.get_json()["slot_id"] == to2, first.get_json()
    _refused(second.result(), "appointments.not_changeable")
    assert second.finished_at_once is False
    _places_match_bookings()
    listed = client.get(URL, headers=me["headers"]).get_json()
    assert [a["slot_id"] for a in listed if a["status"] == "booked"] == [to2]
    moved = first.get_json()["id"]
    assert {a["id"]: a["moved_to"] for a in listed} == {mine["id"]: moved, moved: None}
    assert _rows("SELECT booked FROM appointment_slots WHERE id IN (:a, :b)", a=old, b=to3) == [(0,), (0,)]


def test_reschedules_crossing_two_slots_do_not_deadlock(app: Any, client: Any, monkeypatch: Any) -> None:
    """A moves s1 -> s2 while B moves s2 -> s1: each writes both slots; in the same order, so the
    second waits for the first instead of both waiting for each other (PostgreSQL: a deadlock, 500)."""
    hall = make_hall(app, windows=1, per_window=2)
    day = next_working_day(app)
    a, b = make_citizen(app), make_citizen(app)
    listed = slots(client, a, hall, day).get_json()
    s1, s2 = listed[0]["id"], listed[1]["id"]
    booking_a, booking_b = book(client, a, s1).get_json(), book(client, b, s2).get_json()
    # After A's first slot write (its row lock held), B starts.
    crossing = Competitor(
        monkeypatch, app, service, "_release", _reschedule(b, booking_b["id"], s1), after=True
    )
    moved_a = _reschedule(a, booking_a["id"], s2)(client)
    moved_b = crossing.result()
    assert (moved_a.status_code, moved_b.status_code) == (200, 200), (moved_a.get_json(), moved_b.get_json())
    _places_match_bookings()
    assert _rows("SELECT booked FROM appointment_slots WHERE id IN (:a, :b)", a=s1, b=s2) == [(1,), (1,)]


@pytest.fixture
def at_the_hall(app: Any, client: Any, clock: Any) -> dict:
    """A citizen's booking ten minutes before its slot, their fresh code and a hall officer."""
    hall = make_hall(app, windows=2, per_window=2)
    who = make_citizen(app)
    slot = slots(client, who, hall, next_working_day(app)).get_json()[-1]
    booking = book(client, who, slot["id"]).get_json()
    clock.advance(datetime.fromisoformat(slot["starts_at"]).timestamp() - 10 * 60 - clock.time())
    who = relogin(app, who)  # a token valid at the new time
    code = client.get(f"{URL}/{booking['id']}/check-in-code", headers=who["headers"]).get_json()["code"]
    officer = admin_headers(client, make_operator(app, username="hall-desk", roles=("hall_officer",)))
    return {
        "who": who,
        "id": booking["id"],
        "slot": slot["id"],
        "code": code,
        "officer": officer,
        "hall": hall,
    }


def _scan(visit: dict) -> Callable[[Any], Any]:
    return lambda client: client.post(
        CHECK_IN, json={"code": visit["code"], "hall_id": visit["hall"]}, headers=visit["officer"]
    )


def _stored(visit: dict) -> tuple[str, str | None]:
    return _rows("SELECT status, queue_no FROM appointments WHERE id = :i", i=visit["id"])[0]


def test_a_cancel_during_check_in_waits_and_is_refused(
    app: Any, client: Any, at_the_hall: dict, monkeypatch: Any
) -> None:
    visit = at_the_hall
    # Check-in takes the queue number (next_serial) after reading the booking, before writing it.
    cancel = Competitor(monkeypatch, app, visits, "next_serial", _cancel(visit["who"], visit["id"]))
    scanned = _scan(visit)(client)
    assert scanned.status_code == 200 and scanned.get_json()["queue_no"] == "A001", scanned.get_json()
    _refused(cancel.result(), "appointments.not_changeable")
    assert cancel.finished_at_once is False
    assert _stored(visit) == ("checked_in", "A001")
    _places_match_bookings()  # the checked-in citizen keeps the place


def test_a_check_in_during_a_cancel_waits_and_is_refused(
    app: Any, client: Any, at_the_hall: dict, monkeypatch: Any
) -> None:
    visit = at_the_hall
    scan = Competitor(monkeypatch, app, service, "_release", _scan(visit))
    done = _cancel(visit["who"], visit["id"])(client)
    assert done.status_code == 200 and done.get_json()["status"] == "cancelled", done.get_json()
    _refused(scan.result(), "appointments.not_active")  # the officer is told it was cancelled
    assert scan.finished_at_once is False
    assert _stored(visit) == ("cancelled", None)
    _places_match_bookings()


def test_a_code_scanned_twice_at_once_gives_one_queue_number(
    app: Any, client: Any, at_the_hall: dict, monkeypatch: Any
) -> None:
    visit = at_the_hall
    second = Competitor(monkeypatch, app, visits, "next_serial", _scan(visit))
    first = _scan(visit)(client)
    assert first.status_code == 200 and first.get_json()["queue_no"] == "A001", first.get_json()
    again = second.result()
    assert again.status_code == 200 and again.get_json()["queue_no"] == "A001", again.get_json()
    assert second.finished_at_once is False
    assert _stored(visit) == ("checked_in", "A001")
    other = make_citizen(app)  # the next citizen gets the next number: none was handed out twice
    booking = book(client, other, visit["slot"]).get_json()
    code = client.get(f"{URL}/{booking['id']}/check-in-code", headers=other["headers"]).get_json()["code"]
    nxt = client.post(CHECK_IN, json={"code": code, "hall_id": visit["hall"]}, headers=visit["officer"])
    assert nxt.status_code == 200 and nxt.get_json()["queue_no"] == "A002", nxt.get_json()
