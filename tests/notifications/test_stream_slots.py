"""Each worker serves a few live streams at a time (NOTIFY_SSE_PER_WORKER): a slot is freed
however its stream ends."""

from __future__ import annotations

from typing import Any

from api.v1 import notifications as views

STREAM = "/v1/notifications/stream"


def test_head_requests_do_not_use_up_the_stream_slots(app: Any, client: Any, person: dict) -> None:
    limit = int(app.config["NOTIFY_SSE_PER_WORKER"])
    before = views._streams["open"]
    for _ in range(limit + 1):
        head = client.head(STREAM, headers=person["headers"])
        assert head.status_code == 200
        head.close()
    assert views._streams["open"] == before
    live = client.get(STREAM, headers=person["headers"], buffered=False)
    try:
        assert live.status_code == 200, live.get_data()
        assert next(live.response).startswith(b"retry:")
    finally:
        live.close()
    assert views._streams["open"] == before


def test_a_stream_closed_before_its_first_byte_frees_its_slot(app: Any, client: Any, person: dict) -> None:
    limit = int(app.config["NOTIFY_SSE_PER_WORKER"])
    before = views._streams["open"]
    for _ in range(limit + 1):
        gone = client.get(STREAM, headers=person["headers"], buffered=False)
        assert gone.status_code == 200, gone.get_data()
        gone.close()  # the client went away: nothing was read
    assert views._streams["open"] == before


def test_a_last_event_id_naming_nothing_starts_the_stream_from_now(client: Any, person: dict) -> None:
    for odd in ("x\x00y", "9" * 2000, "0190c6d2-7a39-7c2e-8f6a-3b1d2c4e5f60"):
        live = client.get(STREAM, headers=person["headers"] | {"Last-Event-ID": odd}, buffered=False)
        try:
            assert live.status_code == 200, live.get_data()
            assert next(live.response).startswith(b"retry:")
        finally:
            live.close()
