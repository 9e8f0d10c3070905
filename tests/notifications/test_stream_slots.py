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


def test_a_stream_dropped_after_its_body_was_built_frees_its_slot(
    app: Any, client: Any, person: dict, monkeypatch: Any
) -> None:
    """A hook that fails after the view returned drops the response unclosed (Flask answers
    500 instead): the body's slot and subscription go with it, not with the worker."""
    import gc

    from api import middleware

    def failing(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("access log down")

    limit = int(app.config["NOTIFY_SSE_PER_WORKER"])
    before = views._streams["open"]
    monkeypatch.setitem(app.config, "ACCESS_LOG", True)
    monkeypatch.setattr(middleware.log, "info", failing)
    for _ in range(limit + 1):
        try:
            failed = client.get(STREAM, headers=person["headers"], buffered=False)
        except RuntimeError:
            continue  # the test app propagates the hook's error
        assert failed.status_code == 500
        failed.close()
    monkeypatch.undo()
    gc.collect()
    # The next stream request frees them (the collector itself takes no lock) and is served.
    live = client.get(STREAM, headers=person["headers"], buffered=False)
    try:
        assert live.status_code == 200, live.get_data()
    finally:
        live.close()
    assert views._streams["open"] == before


def test_a_body_collected_while_its_thread_holds_the_slot_lock_does_not_hang_it(app: Any) -> None:
    """The collector runs at any allocation in any thread, also inside the slot count's lock."""
    import gc
    import threading

    class Subscription:
        closed = False

        def close(self) -> None:
            self.closed = True

    subscription = Subscription()
    with views._streams_lock:
        views._streams["open"] += 1
    body = views._LiveStream(iter(()), subscription)
    body.cycle = body  # type: ignore[attr-defined]  # freed by the collector, not at once
    del body
    done = threading.Event()

    def collect_inside_the_lock() -> None:
        with views._streams_lock:
            gc.collect()
        done.set()

    worker = threading.Thread(target=collect_inside_the_lock, daemon=True)
    worker.start()
    assert done.wait(5), "the collector hung on the slot lock"
    views.free_dropped()
    assert subscription.closed
