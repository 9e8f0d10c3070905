"""A face check that merges two accounts while the citizen moves a booking of the one merged away.

The face check's merge locks the accounts (FOR UPDATE), then their bookings; a reschedule locks
the booking, the slots, and then the account (FOR KEY SHARE: the new booking's row is refused on
a closed account). Taken in opposite orders, each waited for the other: a deadlock on
PostgreSQL, one of the two answered 500."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from domain.appointments import service
from tests.api.v1.identity.conftest import complete, mini_citizen, ref_of, start
from tests.api.v1.identity.test_merge_rules import _face_verified_app
from tests.appointments.conftest import book, make_hall, next_working_day, slots
from tests.appointments.test_closed_days import _working_day_after
from tests.appointments.test_races import Competitor, _places_match_bookings


def test_a_face_merge_during_a_move_of_the_merged_accounts_booking_waits_for_the_move(
    client: Any, app: Any, wx: Any, sims: Any, monkeypatch: Any
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the merge and the move never hold rows at once")
    first = _face_verified_app(client, app, sims)  # the person's app account, face-verified
    second = mini_citizen(client, wx)  # the same person in the mini-program
    hall, day = make_hall(app), next_working_day(app)
    booked = book(client, second, slots(client, second, hall, day).get_json()[0]["id"]).get_json()
    later = slots(client, second, hall, _working_day_after(app, day)).get_json()[0]["id"]
    body = start(client, second, "wechat_face").get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    # The face check completes while the move holds the booking (after its lock, before it writes).
    merging = Competitor(
        monkeypatch, app, service, "_active_that_day",
        lambda c: complete(c, second, body["verification"]["id"]),
    )  # fmt: skip
    moved = client.post(f"/v1/appointments/{booked['id']}/reschedule", json={"slot_id": later},
                        headers=second["headers"])  # fmt: skip
    merged = merging.result()
    assert merging.finished_at_once is False  # the merge waited for the move
    assert moved.status_code == 200, moved.get_json()
    assert merged.status_code == 200 and merged.get_json()["merged"] is True, merged.get_json()
    mine = client.get("/v1/appointments", headers=first["headers"]).get_json()
    assert sorted((a["status"], a["moved_to"]) for a in mine) == [
        ("booked", None), ("cancelled", moved.get_json()["id"]),
    ]  # fmt: skip
    _places_match_bookings()


def test_a_face_merge_during_the_halls_release_of_the_merged_accounts_booking_waits_for_it(
    client: Any, app: Any, wx: Any, sims: Any, monkeypatch: Any
) -> None:
    """The sweeper releases the booking of a day the hall closed and tells its citizen; the face
    check merging that citizen's account comes in between. The notice's row names the account
    (its foreign key takes the account FOR KEY SHARE) after the pass locked the booking and its
    slot, while the merge holds the account FOR UPDATE and waits for the booking: each waited
    for the other. The pass now locks the bookings' accounts first, as the merge does."""
    from notifications import fanout
    from tests.appointments.test_closed_days import _close_day, _editor, _sweep

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the merge and the sweeper never hold rows at once")
    first = _face_verified_app(client, app, sims)
    second = mini_citizen(client, wx)
    hall, day = make_hall(app), next_working_day(app)
    assert book(client, second, slots(client, second, hall, day).get_json()[0]["id"]).status_code == 201
    _close_day(client, _editor(app, client), day)
    body = start(client, second, "wechat_face").get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    merging = Competitor(
        monkeypatch, app, fanout, "notify", lambda c: complete(c, second, body["verification"]["id"])
    )
    assert _sweep()["appointments_closed_told"] == 1
    merged = merging.result()
    assert merged.status_code == 200 and merged.get_json()["merged"] is True, merged.get_json()
    assert merging.finished_at_once is False  # the merge waited for the pass
    mine = client.get("/v1/appointments", headers=first["headers"]).get_json()
    assert [a["status"] for a in mine] == ["hall_closed"]
    _places_match_bookings()
