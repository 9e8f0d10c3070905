"""Messages held for the quiet hours count in the hour they go out: a night of events does not
become a burst at 07:00 above the per-user hourly limit."""

from __future__ import annotations

from typing import Any

from tests.api.v1.applications.conftest import relogin
from tests.notifications.conftest import Sim, notify, run_notifier, states, tune
from tests.notifications.test_planning import at_night


def test_a_night_of_held_events_goes_out_at_seven_within_the_hourly_limit(
    app: Any, client: Any, apns: Sim, daytime: Any, monkeypatch: Any
) -> None:
    person = at_night(app, client, daytime)  # 23:00
    tune(app, monkeypatch, user_per_hour=2)
    notes = []
    for _ in range(3):  # two events at 23:00, 01:00 and 03:00: each hour within the limit
        notes += [notify(app, person, "case_received") for _ in range(2)]
        daytime.advance(hours=2)
    run_notifier(app)
    assert apns.get("notifications") == []  # 05:00: all still held
    daytime.advance(hours=2)  # 07:00
    run_notifier(app)
    assert len(apns.get("notifications")) == 2  # the first two events, not six at once
    assert [states(app, n.id) for n in notes[:2]] == [{"apns": "delivered"}] * 2
    assert all(states(app, n.id) == {} and n.skipped["push"] == "rate_limited" for n in notes[2:])
    daytime.advance(minutes=30)  # 07:30: the hour that began at 07:00 is full
    late = notify(app, person, "case_received")
    assert late.skipped["push"] == "rate_limited"
    daytime.advance(minutes=31)  # 08:01
    run_notifier(app)
    assert states(app, notify(app, person, "case_received").id) == {"apns": "created"}
    person = relogin(app, person)  # the night's access token has run out
    inbox = client.get("/v1/notifications", headers=person["headers"]).get_json()
    assert inbox["unread_count"] == 8  # every event in the inbox, limited or not
