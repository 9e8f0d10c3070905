"""Two accounts of one person merged: the duplicate booking the merge cancels gives its place back,
as the slots list shows it to every citizen."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event

from core.db import db
from domain.accounts import service as accounts
from domain.accounts.models import Account
from tests.api.v1.applications.conftest import relogin
from tests.appointments.conftest import book, make_hall, next_working_day, slots
from tests.appointments.test_closed_days import _close_day, _editor, _sweep_in_thread
from tests.appointments.test_races import _places_match_bookings
from tests.concurrency import Competing
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator
from tests.domain.test_merge_followups import wechat_citizen

PHONE = "13912345678"


def _check_in(app: Any, client: Any, who: dict, appointment_id: str, hall: str, officer: dict) -> None:
    mine = relogin(app, who)
    code = client.get(f"/v1/appointments/{appointment_id}/check-in-code", headers=mine["headers"]).get_json()
    done = client.post(
        "/admin/v1/appointments/check-in", json={"code": code["code"], "hall_id": hall}, headers=officer
    )
    assert done.status_code == 200, done.get_json()


def _merge_wechat_into_app(app: Any, in_wechat: dict) -> None:
    """The mini-program user binds the phone of their app account: one person, one account."""
    svc = app.extensions["yiwang"]
    session = db.session()
    accounts.bind_phone(
        session, encryptor=svc.encryptor, hasher=svc.hasher,
        account=session.get(Account, in_wechat["account_id"]), phone=PHONE,
    )  # fmt: skip
    session.commit()
    db.session.remove()


def test_a_checked_in_duplicate_cancelled_by_a_merge_gives_its_place_back(
    app: Any, client: Any, clock: Any
) -> None:
    hall, day = make_hall(app, per_window=2), next_working_day(app)
    on_app, in_wechat = make_citizen(app, phone=PHONE), wechat_citizen(app)
    listed = slots(client, on_app, hall, day).get_json()
    first, second = listed[0], listed[1]
    kept = book(client, on_app, first["id"]).get_json()
    dropped = book(client, in_wechat, second["id"]).get_json()
    # Both at the hall early, both checked in (each account at its own desk visit).
    clock.advance(datetime.fromisoformat(first["starts_at"]).timestamp() - 10 * 60 - clock.time())
    officer = admin_headers(client, make_operator(app, username="hall-desk", roles=("hall_officer",)))
    _check_in(app, client, on_app, kept["id"], hall, officer)
    _check_in(app, client, in_wechat, dropped["id"], hall, officer)

    _merge_wechat_into_app(app, in_wechat)

    survivor = relogin(app, on_app)
    mine = client.get("/v1/appointments", headers=survivor["headers"]).get_json()
    statuses = sorted(a["status"] for a in mine if a["day"] == day.isoformat())
    assert statuses == ["cancelled", "checked_in"]  # one person, one place that day
    shown = {s["id"]: s["available"] for s in slots(client, survivor, hall, day).get_json()}
    assert shown[first["id"]] == 1  # the kept visit still holds its place
    assert shown[second["id"]] == 2  # the cancelled duplicate's place is free again


def _merge_with(app: Any, in_wechat: dict, request: Any) -> Any:
    """Merge the WeChat account into the app account; right after the merge's first row lock (a
    booking or a slot) `request` runs as a competing request (tests.concurrency), given a moment."""
    merging, other = threading.current_thread(), []

    def first_lock(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sql = " ".join(statement.split()).upper()
        locks = sql.startswith("UPDATE APPOINTMENT") or (sql.startswith("SELECT") and "FOR UPDATE" in sql
                                                         and "FROM APPOINTMENT" in sql)  # fmt: skip
        if threading.current_thread() is merging and locks and not other:
            other.append(Competing(app, request))

    event.listen(db.engine, "after_cursor_execute", first_lock)
    try:
        _merge_wechat_into_app(app, in_wechat)
    finally:
        event.remove(db.engine, "after_cursor_execute", first_lock)
    assert other, "the merge locked no booking or slot"
    return other[0]


def _both_booked(app: Any, client: Any) -> tuple[dict, dict, list]:
    """An app account and a WeChat account of one person, each booked the item on the same day."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the merge and a competitor never hold rows at once")
    hall, day = make_hall(app, per_window=2), next_working_day(app)
    on_app, in_wechat = make_citizen(app, phone=PHONE), wechat_citizen(app)
    listed = slots(client, on_app, hall, day).get_json()
    booked = [
        book(client, who, s["id"]).get_json() for who, s in zip((on_app, in_wechat), listed, strict=False)
    ]
    return on_app, in_wechat, booked


def _statuses(app: Any, client: Any, on_app: dict) -> list[str]:
    survivor = relogin(app, on_app)
    return sorted(a["status"] for a in client.get("/v1/appointments", headers=survivor["headers"]).get_json())


def test_a_merge_and_the_halls_release_of_the_same_bookings_wait_for_each_other_not_deadlock(
    app: Any, client: Any
) -> None:
    """Both accounts booked the item on a day the hall then closed; the sweeper's pass releases
    that day right after the merge's first row lock. The pass locks the bookings, then the
    slots, so a merge locking a slot before the bookings deadlocked with it (PostgreSQL aborts
    one: a 500 for the citizen binding their phone). Locking in the same order, the pass waits,
    then releases the booking the merge kept."""
    on_app, in_wechat, _ = _both_booked(app, client)
    _close_day(client, _editor(app, client), next_working_day(app))
    sweep = _merge_with(app, in_wechat, _sweep_in_thread(app))
    assert sweep.waited  # the pass came while the merge held its rows, and waited
    assert sweep.result()["appointments_closed_told"] == 1  # the kept booking, released
    assert _statuses(app, client, on_app) == ["cancelled", "hall_closed"]
    _places_match_bookings()


def test_a_cancel_of_the_duplicate_during_the_merge_waits_and_the_place_goes_back_once(
    app: Any, client: Any
) -> None:
    """The WeChat account cancels its booking (the duplicate the merge drops) right after the
    merge's first row lock. A cancel locks the booking, then the slot: a merge locking the slot
    first deadlocked with it. Now the cancel waits; the booking has moved to the surviving
    account by then (404 for the closed account), and its place was given back once."""
    on_app, in_wechat, booked = _both_booked(app, client)
    cancel = _merge_with(
        app, in_wechat,
        lambda c: c.post(f"/v1/appointments/{booked[1]['id']}/cancel", headers=in_wechat["headers"]),
    )  # fmt: skip
    assert cancel.waited
    answer = cancel.result()
    assert answer.status_code == 404, answer.get_json()
    assert _statuses(app, client, on_app) == ["booked", "cancelled"]
    _places_match_bookings()


def test_a_merge_during_the_sweepers_no_shows_waits_and_neither_deadlocks(
    app: Any, client: Any, clock: Any, monkeypatch: Any
) -> None:
    """The WeChat account missed one visit and booked another on a day the hall then closed; the
    merge comes while the sweeper's pass holds the missed booking (marked a no-show, not yet
    committed). The merge locks its bookings in the order of their ids, the closed day's first:
    a pass that went on to release that day in the same transaction waited for the merge while
    the merge waited for it (PostgreSQL aborts one). The release is committed before the
    no-shows are marked: the merge waits for the pass, then moves both bookings."""
    from domain.appointments import service, visits
    from tests.appointments.test_closed_days import _held, _sweep, _working_day_after
    from tests.appointments.test_races import Competitor

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the merge and the sweeper never hold rows at once")
    # Booking ids in the order of booking (random otherwise), so the closed day's booking is the
    # first the merge locks: the order in which the two locks cross.
    serial = iter(range(1, 100))
    monkeypatch.setattr(service, "new_id", lambda: f"00000000-0000-4000-8000-{next(serial):012d}")
    hall, missed_day = make_hall(app, per_window=2), next_working_day(app)
    closed_day = _working_day_after(app, missed_day)
    on_app, in_wechat = make_citizen(app, phone=PHONE), wechat_citizen(app)
    closed_first = slots(client, in_wechat, hall, closed_day).get_json()[0]
    assert book(client, in_wechat, closed_first["id"]).status_code == 201
    missed = slots(client, in_wechat, hall, missed_day).get_json()[0]
    assert book(client, in_wechat, missed["id"]).status_code == 201
    _close_day(client, _editor(app, client), closed_day)
    clock.advance(datetime.fromisoformat(missed["ends_at"]).timestamp() + 3600 - clock.time())

    def merge(_client: Any) -> None:
        with app.app_context():
            _merge_wechat_into_app(app, in_wechat)

    merging = Competitor(monkeypatch, app, visits, "mark_no_shows", merge, after=True)
    swept = _sweep()
    merging.result()
    assert (swept["no_shows"], swept["appointments_closed_told"]) == (1, 1)
    assert merging.finished_at_once is False  # it waited for the pass
    assert _statuses(app, client, on_app) == ["hall_closed", "no_show"]
    # The missed visit keeps its place (a no-show does); the closed day's is given back.
    assert (_held(missed["id"]), _held(closed_first["id"])) == (1, 0)


def test_a_booking_by_the_survivor_during_a_phone_merge_waits_and_one_place_is_held(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    """The phone route's merge locks both accounts first, as the face check's: a booking by the
    surviving account made while the merge settles waits for it, and is then refused or placed
    (before, it went through and the merge's move broke the one-booking-per-day index: a 500 for
    the citizen binding their phone)."""
    from domain.appointments.models import Appointment
    from tests.appointments.test_races import Competitor

    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL race")
    hall, day = make_hall(app, per_window=2), next_working_day(app)
    on_app, in_wechat = make_citizen(app, phone=PHONE), wechat_citizen(app)
    listed = slots(client, on_app, hall, day).get_json()
    assert book(client, in_wechat, listed[0]["id"]).status_code == 201
    survivor_books = Competitor(
        monkeypatch, app, Appointment, "settle_merge",
        lambda c: book(c, on_app, listed[1]["id"]), after=True,
    )  # fmt: skip
    _merge_wechat_into_app(app, in_wechat)
    assert survivor_books.result().status_code in (201, 409)
    _places_match_bookings()
