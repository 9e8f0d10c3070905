"""A claim whose lease ran out belongs to whoever claimed the message again: the first sender
neither sends nor records it, so the citizen gets one push, not two."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from core.db import db
from notifications.settings import send_margin_for
from tests.notifications.conftest import Sim, apns_token, notify, register_device, states


def _deliver(app: Any, sender: Any, claimed: list) -> None:
    with app.app_context():
        try:
            sender.deliver_batch(db.session(), claimed)
        finally:
            db.session.remove()


def test_a_message_claimed_again_after_its_lease_is_sent_once(
    app: Any, client: Any, person: dict, apns: Sim, daytime: Any, monkeypatch: Any
) -> None:
    token = apns_token()
    register_device(client, person, token)
    note = notify(app, person)
    sender = app.extensions["yiwang"].notifications.sender()
    channel = sender.channels["apns"]
    real_send = channel.send

    def slow_send(session: Any, message: Any, note_view: Any) -> Any:  # a slow provider, within its timeout
        out = real_send(session, message, note_view)
        time.sleep(0.5)
        return out

    monkeypatch.setattr(channel, "send", slow_send)
    # Notifier A claims it; its batch waits in A's queue behind slow sends until the lease is over.
    claimed_a = sender.claim(db.session(), 10)
    db.session.remove()
    daytime.advance(app.config["NOTIFY_LEASE"] + 1)
    # Notifier B finds the lease over and claims the same message again.
    claimed_b = sender.claim(db.session(), 10)
    db.session.remove()
    assert [i for i, _ in claimed_a] == [i for i, _ in claimed_b]
    threads = [threading.Thread(target=_deliver, args=(app, sender, c)) for c in (claimed_a, claimed_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(apns.get("notifications", token=token)) == 1
    assert states(app, note.id) == {"apns": "delivered"}


def test_a_batch_that_waited_past_its_lease_sends_nothing(
    app: Any, client: Any, person: dict, apns: Sim, daytime: Any
) -> None:
    token = apns_token()
    register_device(client, person, token)
    note = notify(app, person)
    sender = app.extensions["yiwang"].notifications.sender()
    claimed = sender.claim(db.session(), 10)
    db.session.remove()
    # Still held (nobody claimed it again) but too little of the lease is left to send safely.
    daytime.advance(app.config["NOTIFY_LEASE"] - 1)
    _deliver(app, sender, claimed)
    assert apns.get("notifications", token=token) == []
    assert states(app, note.id) == {"apns": "sending"}  # the lease brings it back
    daytime.advance(2)
    again = sender.claim(db.session(), 10)
    db.session.remove()
    _deliver(app, sender, again)
    assert len(apns.get("notifications", token=token)) == 1
    assert states(app, note.id) == {"apns": "delivered"}


def test_no_send_starts_unless_the_longest_send_ends_within_the_lease() -> None:
    """An APNs push whose provider token is refused is two calls, each a connection and an
    answer within PUSH_TIMEOUT: a send started with only PROVIDER_TIMEOUT of the lease left could
    outlast it, be claimed again and reach the citizen twice."""
    assert send_margin_for({"PROVIDER_TIMEOUT": 5.0, "PUSH_TIMEOUT": 5.0, "NOTIFY_LEASE": 60.0}) == 21
    assert send_margin_for({"PROVIDER_TIMEOUT": 3.0, "PUSH_TIMEOUT": 8.0, "NOTIFY_LEASE": 120.0}) == 33
    with pytest.raises(ValueError, match="NOTIFY_LEASE"):
        send_margin_for({"PROVIDER_TIMEOUT": 5.0, "PUSH_TIMEOUT": 5.0, "NOTIFY_LEASE": 30.0})
