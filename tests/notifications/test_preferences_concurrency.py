"""Two saves of a citizen's notification preferences at once, the first ones ever especially
(both would insert the row): the account is locked first, so the second waits, then replaces
what the first wrote; neither is a 500."""

from __future__ import annotations

from typing import Any

from core.db import db
from notifications import preferences
from notifications.models import NotificationPreference
from tests.conftest import make_citizen
from tests.evaluations.meanwhile import meanwhile

URL = "/v1/me/notification-preferences"
A = {"events": {"case_accepted": {"sms": False}}, "quiet_hours": True}
B = {"events": {"case_refused": {"push": False}}, "quiet_hours": False}


def _stored(account_id: str) -> NotificationPreference | None:
    session = db.session()
    row = session.get(NotificationPreference, account_id, populate_existing=True)
    session.rollback()
    return row


def _switched_off(client: Any, who: dict) -> dict[str, dict[str, bool]]:
    shown = client.get(URL, headers=who["headers"]).get_json()
    return {
        e["event_type"]: {ch: on for ch, on in e["channels"].items() if not on}
        for e in shown["events"]
        if not all(e["channels"].values())
    } | {"quiet_hours": shown["quiet_hours"]}


def test_the_first_two_saves_at_once_both_succeed_and_the_later_one_stands(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    who = make_citizen(app)
    other = meanwhile(monkeypatch, preferences, app, lambda c: c.put(URL, json=B, headers=who["headers"]))
    first = client.put(URL, json=A, headers=who["headers"])
    second = other.finish()
    assert first.status_code == 200, first.get_json()
    assert other.waited, "the second save went through while the first held the account"
    assert second.status_code == 200, second.get_json()
    row = _stored(who["account_id"])
    assert row is not None and (row.channels, row.quiet_hours) == ({"case_refused": {"push": False}}, False)
    assert _switched_off(client, who) == {"case_refused": {"push": False}, "quiet_hours": False}


def test_two_later_saves_at_once_also_apply_in_turn(app: Any, client: Any, monkeypatch: Any) -> None:
    who = make_citizen(app)
    assert client.put(URL, json=B, headers=who["headers"]).status_code == 200
    other = meanwhile(monkeypatch, preferences, app, lambda c: c.put(URL, json=B, headers=who["headers"]))
    first = client.put(URL, json=A, headers=who["headers"])
    second = other.finish()
    assert (first.status_code, second.status_code) == (200, 200)
    assert other.waited
    row = _stored(who["account_id"])
    assert (row.channels, row.quiet_hours) == ({"case_refused": {"push": False}}, False)
