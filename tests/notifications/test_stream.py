"""Live updates over Server-Sent Events from gunicorn with two worker processes."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from core import clock as clock_mod
from core.redis import resolve_url
from tests.conftest import ROOT, make_citizen
from tests.notifications.conftest import notify


@pytest.fixture(autouse=True)
def daytime() -> Iterator[Any]:
    """Wall-clock time here: the gunicorn processes check tokens against the real clock."""
    previous = clock_mod.use(clock_mod.SystemClock())
    yield None
    clock_mod.use(previous)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(app: Any) -> Iterator[Any]:
    cfg = app.config
    port = _free_port()
    env = dict(os.environ)
    env.update(
        YIWANG_ENV="test", DATABASE_URL=cfg["DATABASE_URL"],
        REDIS_URL=resolve_url(cfg.get("REDIS_URL"), Path(cfg["INSTANCE_DIR"])),
        YIWANG_INSTANCE_DIR=str(cfg["INSTANCE_DIR"]), LOG_LEVEL="ERROR",
        GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", GUNICORN_THREADS="8",
        NOTIFY_SSE_HEARTBEAT="0.5", NOTIFY_SSE_MAX_SECONDS="20",
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("gunicorn did not start")
    assert len(psutil.Process(proc.pid).children()) == 2  # two worker processes
    proc.base = base  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


class Reader:
    """One SSE connection read in a thread: events (id, data) and pings land in a queue."""

    def __init__(self, url: str, token: str, last_event_id: str | None = None) -> None:
        self.events: queue.Queue = queue.Queue()
        self.pings = 0
        self.status: int | None = None
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()
        self.connected = threading.Event()

    def _run(self, url: str, headers: dict) -> None:
        import json

        with httpx.stream("GET", url, headers=headers, timeout=30) as resp:
            self.status = resp.status_code
            self.connected.set()
            event: dict = {}
            for line in resp.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith(": ping"):
                    self.pings += 1
                elif line.startswith("id: "):
                    event["id"] = line[4:]
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and event:
                    self.events.put(event)
                    event = {}

    def next(self, timeout: float = 5.0) -> dict:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self._stop.set()


def _streams_by_worker(master: Any, port: int) -> list[int]:
    """How many open connections each worker process holds on the port."""
    return [
        sum(
            1
            for c in worker.net_connections(kind="tcp")
            if c.laddr.port == port and c.status == "ESTABLISHED"
        )
        for worker in psutil.Process(master.pid).children()
    ]


def test_open_streams_on_either_worker_get_new_notifications_at_once(app: Any, gunicorn: Any) -> None:
    port = int(gunicorn.base.rsplit(":", 1)[1])
    people, readers = [], []
    # Streams until both workers hold some (the kernel hands connections to either; it may hand
    # one worker more than it may hold, and that worker then answers 503: try again).
    attempts = 0
    while (len(readers) < 4 or min(_streams_by_worker(gunicorn, port)) == 0) and attempts < 40:
        attempts += 1
        person = make_citizen(app)
        reader = Reader(f"{gunicorn.base}/v1/notifications/stream", person["access_token"])
        assert reader.connected.wait(10)
        if reader.status == 503:  # that worker is full: its limit holds, the next may land elsewhere
            reader.close()
            continue
        assert reader.status == 200
        people.append(person)
        readers.append(reader)
    assert min(_streams_by_worker(gunicorn, port)) >= 1, _streams_by_worker(gunicorn, port)
    time.sleep(0.3)  # subscribed
    started = time.monotonic()
    notes = [notify(app, p, "case_accepted") for p in people]  # published when committed
    for reader, note in zip(readers, notes, strict=True):
        got = reader.next()
        assert got["id"] == note.id and got["data"]["title"] == "申请已受理"
    # At once: an open stream gets its notice as the commit publishes it, not at a reconnect.
    # (2.5 s leaves room for the other test process sharing the two cores.)
    assert time.monotonic() - started < 2.5
    time.sleep(1.2)
    assert all(r.pings >= 1 for r in readers)  # heartbeats keep idle streams open
    for r in readers:
        r.close()


def test_a_stream_resumes_with_last_event_id(app: Any, gunicorn: Any) -> None:
    person = make_citizen(app)
    first = notify(app, person, "case_received")
    missed = [notify(app, person, "case_accepted"), notify(app, person, "supplement_requested")]
    reader = Reader(
        f"{gunicorn.base}/v1/notifications/stream", person["access_token"], last_event_id=first.id
    )
    assert [reader.next()["id"], reader.next()["id"]] == [n.id for n in missed]
    reader.close()


def test_a_stream_that_missed_more_than_it_replays_tells_the_app_to_reload_its_inbox(
    app: Any, gunicorn: Any
) -> None:
    """A phone offline for 101 notifications cannot have them all replayed: instead of losing
    all but 100 without a word, the stream says `resync` (the app reloads its inbox, which has
    every one) and goes on live; 100 missed are still replayed one by one."""
    from notifications.inbox import REPLAY_LIMIT

    person = make_citizen(app)
    seen = notify(app, person, "case_received")
    missed = [notify(app, person, "case_accepted") for _ in range(REPLAY_LIMIT + 1)]
    url = f"{gunicorn.base}/v1/notifications/stream"

    reader = Reader(url, person["access_token"], last_event_id=seen.id)
    got = reader.next()
    assert got["event"] == "resync", got
    assert got["data"]["code"] == "notifications.resync" and "刷新消息中心" in got["data"]["message"]
    assert got["data"]["reload"] == "/v1/notifications" and got["data"]["replay_limit"] == REPLAY_LIMIT
    # The app resumes after the newest: what the reload shows is not asked for again.
    assert got["id"] == missed[-1].id
    later = notify(app, person, "supplement_requested")  # the stream goes on live
    live = reader.next()
    assert live["event"] == "notification" and live["id"] == later.id
    reader.close()
    page = httpx.get(
        f"{gunicorn.base}/v1/notifications", params={"limit": 100, "unread": "true"},
        headers=person["headers"], timeout=5,
    ).json()  # fmt: skip
    assert page["unread_count"] == REPLAY_LIMIT + 3  # the reload has every one the stream skipped
    assert {n.id for n in missed[-99:]} <= {item["id"] for item in page["items"]}

    # Exactly as many as the stream replays: each of them, no resync.
    again = Reader(url, person["access_token"], last_event_id=missed[1].id)
    replayed = [again.next() for _ in range(REPLAY_LIMIT)]
    assert [e["event"] for e in replayed] == ["notification"] * REPLAY_LIMIT
    assert [e["id"] for e in replayed] == [n.id for n in [*missed[2:], later]]
    again.close()


def test_a_stream_signed_out_from_another_device_gets_nothing_more_and_ends(app: Any, gunicorn: Any) -> None:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    streaming, other = make_citizen(app, phone=phone), make_citizen(app, phone=phone)
    reader = Reader(f"{gunicorn.base}/v1/notifications/stream", streaming["access_token"])
    assert reader.connected.wait(10) and reader.status == 200
    gone = httpx.delete(
        f"{gunicorn.base}/v1/me/sessions/{streaming['session_id']}", headers=other["headers"], timeout=5
    )
    assert gone.status_code == 204
    started = time.monotonic()
    notify(app, streaming, "case_accepted")  # published to the worker holding the stream
    got = reader.next()
    assert got["event"] == "session_ended" and got["data"]["code"] == "auth.session_revoked"
    assert "id" not in got  # not note.id: the notification was not delivered
    reader._thread.join(timeout=5)  # the server ended the response
    assert not reader._thread.is_alive() and time.monotonic() - started < 5
    assert reader.events.empty()


def test_a_stream_needs_a_token(gunicorn: Any) -> None:
    assert httpx.get(f"{gunicorn.base}/v1/notifications/stream", timeout=5).status_code == 401


def test_open_streams_end_promptly_when_gunicorn_stops(app: Any, gunicorn: Any) -> None:
    person = make_citizen(app)
    reader = Reader(f"{gunicorn.base}/v1/notifications/stream", person["access_token"])
    assert reader.connected.wait(10) and reader.status == 200
    started = time.monotonic()
    gunicorn.terminate()
    gunicorn.wait(timeout=15)
    # The stream noticed the worker draining within its one-second poll, not after the stream's
    # lifetime (20 s here) or gunicorn's graceful timeout.
    assert time.monotonic() - started < 5
    reader._thread.join(timeout=5)
    assert not reader._thread.is_alive()
