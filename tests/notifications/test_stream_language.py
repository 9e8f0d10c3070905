"""A live stream forwards each new notification in the language the app opened it with, as the
inbox shows it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.notifications.conftest import notify

STREAM = "/v1/notifications/stream"


@pytest.fixture(autouse=True)
def quick(app: Any, monkeypatch: Any) -> None:
    """Heartbeats every 0.2 s, so reading a stream never blocks long."""
    monkeypatch.setitem(app.config, "NOTIFY_SSE_HEARTBEAT", 0.2)
    monkeypatch.setitem(app.config, "NOTIFY_SSE_MAX_SECONDS", 10.0)


def _open(client: Any, headers: dict) -> Any:
    live = client.get(STREAM, headers=headers, buffered=False)
    assert live.status_code == 200, live.get_data()
    assert next(live.response).startswith(b"retry:")
    return live


def _next_notification(live: Any, within: float = 8.0) -> dict:
    started = time.monotonic()
    while time.monotonic() - started < within:
        frame = next(live.response).decode()
        if "event: notification" in frame:
            return json.loads(frame.split("data: ", 1)[1])
    raise AssertionError("no notification frame")


def test_a_stream_opened_in_english_gets_english_and_one_in_chinese_gets_chinese(
    app: Any, client: Any, person: dict
) -> None:
    english_headers = person["headers"] | {"Accept-Language": "en"}
    english, chinese = _open(client, english_headers), _open(client, person["headers"])
    try:
        time.sleep(0.3)  # both subscribed
        notify(app, person, "case_accepted")
        in_english, in_chinese = _next_notification(english), _next_notification(chinese)
    finally:
        english.close()
        chinese.close()
    inbox = client.get("/v1/notifications", headers=english_headers).get_json()["items"][0]
    assert (in_english["title"], in_english["body"]) == (inbox["title"], inbox["body"])
    assert in_english["title"] == "Application accepted"
    assert in_chinese["title"] == "申请已受理"
    assert set(in_english) == set(in_chinese) == set(inbox)  # the same item form as the inbox


def test_a_notice_made_while_a_reconnect_catches_up_comes_once(
    app: Any, client: Any, person: dict, monkeypatch: Any
) -> None:
    """The stream subscribes first, then reads what was missed: a notice committed between the
    two is in the catch-up and also arrives live. The citizen's phone shows it once."""
    from api.v1 import notifications as view

    seen = notify(app, person, "case_received")
    made: list[str] = []
    real_since = view.inbox.since

    def since_after_a_new_notice(*args: Any, **kwargs: Any) -> Any:
        made.append(notify(app, person, "case_accepted").id)  # committed and published meanwhile
        return real_since(*args, **kwargs)

    monkeypatch.setattr(view.inbox, "since", since_after_a_new_notice)
    live = _open(client, person["headers"] | {"Last-Event-ID": seen.id})
    ids: list[str] = []
    try:
        ended = time.monotonic() + 1.5  # the live copy arrives within a heartbeat or two
        while time.monotonic() < ended:
            frame = next(live.response).decode()
            if "event: notification" in frame:
                ids.append(json.loads(frame.split("data: ", 1)[1])["id"])
    finally:
        live.close()
    assert ids == made, ids
