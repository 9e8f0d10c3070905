"""`python -m workers.notifier`: turn case changes into notifications and deliver them.

A planning thread turns application notices into inbox entries and channel messages (and tells
open apps at once through Redis), and plans SMS fallbacks whose wait is over; a claiming loop
feeds NOTIFY_THREADS sending threads. Messages are claimed with a lease, so several notifier
processes share the work and a killed one's messages come back. SIGTERM stops claiming and lets
the threads finish what they hold.
"""

from __future__ import annotations

import argparse
import gc
import logging
import queue
import signal
import sys
import threading
import time

from core.db import db
from factory import create_app

log = logging.getLogger("yiwang.notifier")


def plan_once(deps: object) -> int:
    """One planning round: notices → notifications (open apps hear on commit), then due SMS fallbacks."""
    from notifications import delivery, fanout

    settings = deps.settings  # type: ignore[attr-defined]
    try:
        made = fanout.process_notices(db.session(), settings)
        planned = delivery.fallback_pass(db.session(), settings)
        return len(made) + planned
    except Exception:
        log.exception("planning notifications failed")
        db.session.rollback()
        return 0
    finally:
        db.session.remove()


def run(app: object, *, threads: int, once: bool = False, poll: float = 0.1, batch_size: int = 10) -> dict:
    """Plan and send until stopped (or, with once, until nothing is due); returns counts."""
    from api.deps import services

    deps = services().notifications
    sender = deps.sender()
    work: queue.Queue = queue.Queue()
    counts: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def count(key: str, n: int = 1) -> None:
        with lock:
            counts[key] = counts.get(key, 0) + n

    def send_loop() -> None:
        with app.app_context():  # type: ignore[attr-defined]
            while True:
                batch = work.get()
                if batch is None:
                    return
                try:
                    for state in sender.deliver_batch(db.session(), batch).values():
                        count(state)
                except Exception:  # the lease brings the messages back
                    log.exception("notification delivery failed unexpectedly")
                    db.session.rollback()
                    count("error")
                finally:
                    db.session.remove()
                    work.task_done()

    def plan_loop() -> None:
        with app.app_context():  # type: ignore[attr-defined]
            while not stop.is_set():
                done = plan_once(deps)
                count("planned", done)
                if not done:
                    stop.wait(poll)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool = [threading.Thread(target=send_loop, daemon=True) for _ in range(threads)]
    planner = threading.Thread(target=plan_loop, daemon=True)
    if not once:
        planner.start()
    for t in pool:
        t.start()
    try:
        while not stop.is_set():
            if once:
                count("planned", plan_once(deps))
            if work.qsize() >= threads:  # every sender has a batch waiting
                time.sleep(0.005)
                continue
            claimed: list[tuple[str, int]] = []  # (message id, attempt)
            try:
                claimed = sender.claim(db.session(), batch_size * threads)
            except Exception:
                log.exception("claiming notifications failed")
                db.session.rollback()
            finally:
                db.session.remove()
            # Batches small enough that every sender gets a share of what was claimed.
            size = max(1, min(batch_size, -(-len(claimed) // threads)))
            for start in range(0, len(claimed), size):
                work.put(claimed[start : start + size])
            if not claimed:
                if once:
                    work.join()
                    break
                time.sleep(poll)
    finally:
        work.join()
        for _ in pool:
            work.put(None)
        for t in pool:
            t.join(timeout=10)
        stop.set()
        if planner.is_alive():
            planner.join(timeout=10)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop when nothing is due")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    from config import load_config

    cfg = load_config()
    threads = args.threads or cfg.NOTIFY_THREADS
    cfg.DATABASE_POOL_SIZE = max(cfg.DATABASE_POOL_SIZE, threads + 3)
    app = create_app(cfg)
    # Each message allocates many short-lived objects; the default collector thresholds make the
    # interpreter walk the long-lived ones (app, mappers, pools) over and over.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    with app.app_context():
        log.info("notifier started", extra={"threads": threads})
        counts = run(app, threads=threads, once=args.once, batch_size=app.config["NOTIFY_BATCH"])
        log.info("notifier stopped", extra=counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
