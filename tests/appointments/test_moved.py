"""A booking a reschedule moved names its successor (`moved_to`) and cannot be cancelled; a booking
the citizen cancelled themselves can be cancelled again, even when their next booking was made in
the same instant (every test's clock is frozen: the old rule, "a successor created when this one
closed", took that for a move)."""

from __future__ import annotations

from typing import Any

from tests.appointments.conftest import URL, book, next_working_day, slots
from tests.conftest import make_citizen


def _cancel(client: Any, who: dict, appointment_id: str) -> Any:
    return client.post(f"{URL}/{appointment_id}/cancel", headers=who["headers"])


def _moved_to(client: Any, who: dict) -> dict[str, str | None]:
    return {a["id"]: a["moved_to"] for a in client.get(URL, headers=who["headers"]).get_json()}


def test_a_moved_booking_names_its_successor_and_cannot_be_cancelled(
    app: Any, client: Any, hall: str
) -> None:
    me = make_citizen(app)
    first, second = (s["id"] for s in slots(client, me, hall, next_working_day(app)).get_json()[:2])
    made = book(client, me, first)
    assert made.status_code == 201 and made.get_json()["moved_to"] is None, made.get_json()
    old = made.get_json()["id"]
    moved = client.post(f"{URL}/{old}/reschedule", json={"slot_id": second}, headers=me["headers"])
    assert moved.status_code == 200 and moved.get_json()["moved_to"] is None, moved.get_json()
    new = moved.get_json()["id"]
    assert _moved_to(client, me) == {old: new, new: None}  # the phone opens `new` from `old`
    refused = _cancel(client, me, old)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "appointments.not_changeable"
    done = _cancel(client, me, new)
    assert done.status_code == 200 and done.get_json()["status"] == "cancelled"
    assert done.get_json()["moved_to"] is None
    again = _cancel(client, me, new)  # a plain cancelled booking: cancelling again is the same answer
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"
    assert _cancel(client, me, old).status_code == 409  # still moved
    assert _moved_to(client, me) == {old: new, new: None}


def test_a_cancel_and_a_new_booking_in_one_frozen_instant_are_not_a_move(
    app: Any, client: Any, hall: str, clock: Any
) -> None:
    me = make_citizen(app)
    first, second = (s["id"] for s in slots(client, me, hall, next_working_day(app)).get_json()[:2])
    old = book(client, me, first).get_json()["id"]
    assert _cancel(client, me, old).status_code == 200
    # The clock has not moved: the new booking is created at the instant the old one was cancelled.
    new = book(client, me, second)
    assert new.status_code == 201, new.get_json()
    again = _cancel(client, me, old)
    assert again.status_code == 200, again.get_json()  # not 409: nothing moved it
    assert again.get_json()["status"] == "cancelled" and again.get_json()["moved_to"] is None
    assert _moved_to(client, me) == {old: None, new.get_json()["id"]: None}


def test_a_cancelled_or_moved_booking_has_no_check_in_code_and_says_why(
    app: Any, client: Any, hall: str
) -> None:
    me = make_citizen(app)
    first, second = (s["id"] for s in slots(client, me, hall, next_working_day(app, after=3)).get_json()[:2])
    old = book(client, me, first).get_json()["id"]
    # Days before the slot a booked appointment has its code: "not in the check-in time" is no reason.
    assert client.get(f"{URL}/{old}/check-in-code", headers=me["headers"]).status_code == 200
    new = client.post(f"{URL}/{old}/reschedule", json={"slot_id": second}, headers=me["headers"]).get_json()[
        "id"
    ]
    moved = client.get(f"{URL}/{old}/check-in-code", headers=me["headers"] | {"Accept-Language": "en"})
    assert moved.status_code == 409 and moved.get_json()["error"]["code"] == "appointments.not_active"
    assert moved.get_json()["error"]["message"] == "This appointment was cancelled or moved to another time"
    assert _cancel(client, me, new).status_code == 200
    cancelled = client.get(f"{URL}/{new}/check-in-code", headers=me["headers"])
    assert cancelled.status_code == 409 and cancelled.get_json()["error"]["code"] == "appointments.not_active"
    assert cancelled.get_json()["error"]["message"] == "该预约已取消或已改约"
