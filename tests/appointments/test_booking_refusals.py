"""What a booking the database refuses answers: "already booked" only when the one-booking-per-
day index refused it (a race past the rule's check), never for another failure of the insert."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from sqlalchemy import insert, select

from core import clock as clock_mod
from core.db import db, new_id
from domain.accounts.errors import AccountNotFound
from domain.appointments import service
from domain.appointments import slots as slots_module
from domain.appointments.models import Appointment, AppointmentSlot
from tests.appointments.conftest import ITEM, URL, book, next_working_day, slots
from tests.conftest import make_citizen

ON_POSTGRES = (os.environ.get("DATABASE_URL") or "").startswith("postgresql")


def _booked(slot_id: str) -> int:
    with db.autocommit() as conn:
        return conn.execute(select(AppointmentSlot.booked).where(AppointmentSlot.id == slot_id)).scalar_one()


def test_a_booking_that_fails_to_store_for_another_reason_is_not_called_already_booked(
    app: Any, client: Any, citizen: dict, hall: str
) -> None:
    """An account the booking cannot refer to (erased a moment ago) is not the one-per-day rule:
    the booking claims no place (it checks the account is open) and says the account is not
    found, and the place goes back."""
    slot = slots(client, citizen, hall, next_working_day(app)).get_json()[0]["id"]
    with pytest.raises(AccountNotFound):
        service.book(db.session(), account_id=new_id(), slot_id=slot)
    db.session.remove()
    assert _booked(slot) == 0
    taken = book(client, citizen, slot)  # and the citizen who exists books it as usual
    assert taken.status_code == 201, taken.get_json()
    assert _booked(slot) == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite holds one writer at a time: no such race there")
def test_a_same_day_booking_committed_during_the_check_is_already_booked(
    app: Any, client: Any, hall: str
) -> None:
    """Another booking of the same citizen, item and day, not yet committed when the booking
    statement checks the rule (so the check lets it through), commits while the insert waits on
    the index: 409 already booked, and the second slot's place goes back."""
    person = make_citizen(app)
    first, second = (s["id"] for s in slots(client, person, hall, next_working_day(app)).get_json()[:2])
    with db.autocommit() as conn:
        slot = conn.execute(select(AppointmentSlot).where(AppointmentSlot.id == first)).one()
    now = clock_mod.now()
    answers: list[Any] = []
    with db.engine.connect() as other:  # type: ignore[union-attr]
        other.execute(insert(Appointment.__table__).values(
            id=new_id(), account_id=person["account_id"], slot_id=first, hall_id=slot.hall_id,
            service_code=ITEM, day=slot.day, status="booked", created_at=now, updated_at=now,
        ))  # fmt: skip
        racing = threading.Thread(target=lambda: answers.append(book(app.test_client(), person, second)))
        racing.start()
        time.sleep(1.0)  # the statement checks, claims the place, then waits on the index entry
        assert racing.is_alive(), "the booking did not wait for the uncommitted one"
        other.commit()
        racing.join(timeout=10)
    assert answers, "the booking never answered"
    refused = answers[0]
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["error"]["code"] == "appointments.already_booked"
    assert _booked(second) == 0
    with db.autocommit() as conn:
        held = conn.execute(select(Appointment.slot_id).where(Appointment.account_id == person["account_id"]))
        assert [row[0] for row in held] == [first]


def test_a_day_that_becomes_a_holiday_closes_the_slots_phones_already_hold(app, client, hall) -> None:
    """A typhoon closure entered after the day's slots were listed: the ids a phone holds can no
    longer be booked or moved into; the closure taken back, they can again."""
    from tests.api.v1.applications.conftest import key
    from tests.domain.operators.factories import admin_headers, make_operator

    who = make_citizen(app)
    day, other_day = next_working_day(app), next_working_day(app, after=2)
    listed = slots(client, who, hall, day).get_json()
    held = book(client, who, slots(client, who, hall, other_day).get_json()[0]["id"]).get_json()
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    body = {"date": day.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}
    made = client.post("/admin/v1/calendar/overrides", json=body, headers=editor | key())
    assert made.status_code == 201, made.get_json()

    refused = book(client, who, listed[0]["id"])
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "appointments.closed"
    moved = client.post(
        f"{URL}/{held['id']}/reschedule", json={"slot_id": listed[1]["id"]}, headers=who["headers"]
    )
    assert moved.status_code == 409 and moved.get_json()["error"]["code"] == "appointments.closed"
    assert (
        db.session().scalar(select(AppointmentSlot.booked).where(AppointmentSlot.id == listed[0]["id"])) == 0
    )

    gone = client.delete(f"/admin/v1/calendar/overrides/{made.get_json()['id']}", headers=editor | key())
    assert gone.status_code == 204
    again = book(client, who, listed[0]["id"])
    assert again.status_code == 201, again.get_json()


def test_a_booking_of_one_day_does_not_stand_in_the_way_of_another_day(app, client, hall) -> None:
    """One booking per item and day: another day of the same item is another booking (on
    SQLite, the embedded default, any active booking counted as that day's)."""
    who = make_citizen(app)
    later, sooner = next_working_day(app, after=2), next_working_day(app)
    assert book(client, who, slots(client, who, hall, later).get_json()[0]["id"]).status_code == 201
    other = book(client, who, slots(client, who, hall, sooner).get_json()[0]["id"])
    assert other.status_code == 201, other.get_json()
    same_day = book(client, who, slots(client, who, hall, sooner).get_json()[1]["id"])
    assert (
        same_day.status_code == 409 and same_day.get_json()["error"]["code"] == "appointments.already_booked"
    )


def test_a_move_crossing_the_days_closure_is_refused_not_placed_in_a_closed_slot(
    app, client, hall, monkeypatch
) -> None:
    """The reschedule read the new slot open; a typhoon closure committed before it took the
    place: the place is not taken on the closed day (booking already re-checked this)."""
    from tests.api.v1.applications.conftest import key
    from tests.concurrency import Competing
    from tests.domain.operators.factories import admin_headers, make_operator

    who = make_citizen(app)
    day, other_day = next_working_day(app), next_working_day(app, after=2)
    target = slots(client, who, hall, other_day).get_json()[0]
    held = book(client, who, slots(client, who, hall, day).get_json()[0]["id"]).get_json()
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    body = {"date": other_day.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}
    real = service._active_that_day
    closures: list[Any] = []

    def closes_meanwhile(*args: Any) -> Any:  # between the reschedule's checks and its claim
        if not closures:
            closures.append(Competing(app, lambda c: c.post("/admin/v1/calendar/overrides", json=body,
                                                            headers=editor | key())))  # fmt: skip
        return real(*args)

    monkeypatch.setattr(service, "_active_that_day", closes_meanwhile)
    moved = client.post(
        f"{URL}/{held['id']}/reschedule", json={"slot_id": target["id"]}, headers=who["headers"]
    )
    assert closures and closures[0].result().status_code == 201
    if closures[0].waited:  # SQLite: the move held its one write lock, so it went first
        assert moved.status_code == 200, moved.get_json()
        return
    assert moved.status_code == 409 and moved.get_json()["error"]["code"] == "appointments.closed"
    assert _booked(target["id"]) == 0
    db.session.remove()
    assert db.session.get(Appointment, held["id"]).status == "booked"  # the old booking stands


def test_the_first_listing_of_a_day_crossing_its_closure_leaves_no_open_slot(
    app, client, hall, monkeypatch
) -> None:
    """The day's slots were being made (the day read open) when a typhoon closure was entered:
    the closure still closes them, so none can be booked on the shut day."""
    from tests.api.v1.applications.conftest import key
    from tests.concurrency import Competing
    from tests.domain.operators.factories import admin_headers, make_operator

    who = make_citizen(app)
    day = next_working_day(app, after=3)
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    body = {"date": day.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}
    real, calls, closures = slots_module.open_hours, [], []

    def closes_meanwhile(*args: Any) -> Any:
        hours = real(*args)
        calls.append(1)
        if len(calls) == 2 and not closures:  # inside the making of the slots, the day read open
            closures.append(Competing(app, lambda c: c.post("/admin/v1/calendar/overrides", json=body,
                                                            headers=editor | key())))  # fmt: skip
        return hours

    monkeypatch.setattr(slots_module, "open_hours", closes_meanwhile)
    listed = slots(client, who, hall, day)
    monkeypatch.undo()
    assert closures and closures[0].result().status_code == 201
    assert listed.status_code == 200 and listed.get_json(), listed.get_json()  # made before the closure
    refused = book(client, who, listed.get_json()[0]["id"])
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "appointments.closed"
    db.session.remove()
    open_left = db.session.scalars(
        select(AppointmentSlot.id).where(AppointmentSlot.day == day, AppointmentSlot.closed.is_(False))
    ).all()
    assert open_left == []
