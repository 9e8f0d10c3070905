"""A live stream lives no longer than its session: signed out (logout, from another device, all
sessions of the account) it delivers nothing more and ends with `event: session_ended`; its
access token expired, it ends and the client reconnects with a fresh one."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from api.v1 import notifications as views
from core.db import db
from domain.auth import sessions
from tests.conftest import make_citizen
from tests.notifications.conftest import notify

STREAM = "/v1/notifications/stream"


@pytest.fixture
def quick(app: Any, monkeypatch: Any) -> None:
    """Heartbeats every 0.2 s, so an idle stream notices a revocation at once; a stream that
    did not end on its own ends after 5 s (the tests then fail, rather than wait 300 s)."""
    monkeypatch.setitem(app.config, "NOTIFY_SSE_HEARTBEAT", 0.2)
    monkeypatch.setitem(app.config, "NOTIFY_SSE_MAX_SECONDS", 5.0)


def _two_devices(app: Any, person: dict) -> tuple[dict, dict]:
    """`person` on a second device: two sessions of one account."""
    other = make_citizen(app, phone=person["phone"], device_label="iPhone 15")
    assert other["account_id"] == person["account_id"]
    return person, other


@pytest.fixture
def person(app: Any) -> dict:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    return make_citizen(app, phone=phone) | {"phone": phone}


def _open(client: Any, who: dict, **headers: str) -> Any:
    live = client.get(STREAM, headers=who["headers"] | headers, buffered=False)
    assert live.status_code == 200, live.get_data()
    assert next(live.response).startswith(b"retry:")
    return live


def _rest(live: Any, within: float = 4.0) -> tuple[list[str], bool, float]:
    """The frames until the stream ends (or `within` seconds pass); whether it ended; how long."""
    frames, started = [], time.monotonic()
    while time.monotonic() - started < within:
        try:
            chunk = next(live.response)
        except StopIteration:
            return frames, True, time.monotonic() - started
        frames.append(chunk.decode())
    return frames, False, time.monotonic() - started


def _events(frames: list[str]) -> list[str]:
    return [line[len("event: ") :] for f in frames for line in f.splitlines() if line.startswith("event: ")]


def _revoke(app: Any, client: Any, how: str, streaming: dict, other: dict) -> None:
    if how == "other_device":
        r = client.delete(f"/v1/me/sessions/{streaming['session_id']}", headers=other["headers"])
        assert r.status_code == 204
    elif how == "logout":
        assert client.post("/v1/auth/logout", headers=streaming["headers"]).status_code == 204
    else:  # the account locked, deleted or merged: every session ends
        session = db.session()
        sessions.revoke_all(
            session, revocations=app.extensions["yiwang"].revocations,
            account_id=streaming["account_id"], reason="account_locked",
        )  # fmt: skip
        session.commit()
    assert client.get("/v1/me", headers=streaming["headers"]).status_code == 401


@pytest.mark.parametrize("how", ["other_device", "logout", "all_sessions"])
def test_a_signed_out_stream_delivers_nothing_more_and_ends(
    app: Any, client: Any, person: dict, quick: None, how: str
) -> None:
    streaming, other = _two_devices(app, person)
    before = views._streams["open"]
    live = _open(client, streaming)
    try:
        _revoke(app, client, how, streaming, other)
        note = notify(app, streaming, "case_accepted")  # published to the open stream
        frames, ended, took = _rest(live)
    finally:
        live.close()
    assert note.id not in "".join(frames) and "notification" not in _events(frames)
    assert ended and took < 3.0, (frames, took)  # at once, well before the 5 s a stream lasts here
    assert _events(frames) == ["session_ended"]
    data = json.loads(frames[-1].split("data: ", 1)[1])
    assert data["code"] == "auth.session_revoked"
    assert views._streams["open"] == before  # its slot is free again


def test_an_idle_stream_ends_at_the_next_heartbeat_after_logout(
    app: Any, client: Any, person: dict, quick: None
) -> None:
    before = views._streams["open"]
    live = _open(client, person, **{"Accept-Language": "en"})
    try:
        assert client.post("/v1/auth/logout", headers=person["headers"]).status_code == 204
        frames, ended, took = _rest(live)
    finally:
        live.close()
    assert ended and took < 3.0, (frames, took)  # at once, well before the 5 s a stream lasts here
    assert _events(frames) == ["session_ended"]
    assert "please log in again" in frames[-1]
    assert views._streams["open"] == before


def test_missed_notifications_are_not_sent_to_a_signed_out_stream(
    app: Any, client: Any, person: dict, quick: None
) -> None:
    streaming, other = _two_devices(app, person)
    seen = notify(app, streaming, "case_received")
    missed = notify(app, streaming, "case_accepted")
    before = views._streams["open"]
    live = _open(client, streaming, **{"Last-Event-ID": seen.id})  # missed: read from the database
    try:
        _revoke(app, client, "other_device", streaming, other)
        frames, ended, _took = _rest(live)
    finally:
        live.close()
    assert missed.id not in "".join(frames)
    assert ended and _events(frames) == ["session_ended"]
    assert views._streams["open"] == before


def test_the_stream_of_a_session_still_open_goes_on(app: Any, client: Any, person: dict, quick: None) -> None:
    streaming, other = _two_devices(app, person)
    live = _open(client, streaming)
    try:
        r = client.delete(f"/v1/me/sessions/{other['session_id']}", headers=streaming["headers"])
        assert r.status_code == 204  # the other device signed out, not this one
        note = notify(app, streaming, "case_accepted")
        frame = next(live.response).decode()
        while frame.startswith(": ping"):
            frame = next(live.response).decode()
    finally:
        live.close()
    assert f"id: {note.id}\nevent: notification\n" in frame


def test_a_stream_ends_when_its_access_token_expires(
    app: Any, client: Any, person: dict, quick: None, daytime: Any
) -> None:
    before = views._streams["open"]
    live = _open(client, person)
    try:
        daytime.advance(int(app.config["ACCESS_TOKEN_TTL"]))  # the token's `exp`: no longer valid
        note = notify(app, person, "case_accepted")
        frames, ended, took = _rest(live)
    finally:
        live.close()
    assert note.id not in "".join(frames)
    # Ended as at its maximum duration (no session_ended: the session is open): the client
    # reconnects, gets 401 auth.token_expired, refreshes and reconnects with Last-Event-ID.
    assert ended and took < 3.0 and _events(frames) == [], (frames, took)
    assert views._streams["open"] == before
    assert client.get(STREAM, headers=person["headers"]).status_code == 401
