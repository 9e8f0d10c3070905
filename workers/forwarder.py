"""`python -m workers.forwarder`: deliver forwarding rows to the province, and apply its stage events.

One claiming loop claims due rows and builds their bodies in batches (domain/forwarding/batches.py)
for FORWARDER_THREADS sending threads; a recorder thread records the province's receipts in
batches, and an applier thread moves cases by the stage events the callbacks kept
(domain/forwarding/events.py). Every process shares the profile's rate limit, in-flight cap and
circuit breaker through Redis. SIGTERM stops claiming
and lets the threads finish what they hold; a killed process's rows come back when their
leases expire.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
import threading
import time

from core.db import db
from factory import create_app

log = logging.getLogger("yiwang.forwarder")

RECORD_BATCH = 64  # receipts recorded in one transaction at most
RECORD_LINGER = 0.05  # seconds the recorder waits for more receipts to record with the first


def run(app: object, *, threads: int, once: bool = False, poll: float = 0.2, processes: int = 2) -> dict:
    """Claim and deliver until stopped (or, with once, until nothing is due); returns counts."""
    from api.deps import services
    from domain.forwarding import batches

    forwarder = services().forwarding.forwarder(processes=processes)
    work: queue.Queue = queue.Queue()  # built bodies: (row id, attempt, body)
    sent: queue.Queue = queue.Queue()  # receipts to record: (row id, attempt, receipt)
    counts: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def count(outcomes: list[str]) -> None:
        with lock:
            for outcome in outcomes:
                key = outcome.split(":")[0]
                counts[key] = counts.get(key, 0) + 1

    def sender() -> None:
        with app.app_context():  # type: ignore[attr-defined]
            while True:
                item = work.get()
                if item is None:
                    return
                try:
                    outcome = forwarder.transmit(db.session(), *item)
                except Exception:  # the row's lease brings it back
                    log.exception("delivery failed unexpectedly")
                    db.session.rollback()
                    outcome = "error"
                finally:
                    db.session.remove()
                if isinstance(outcome, str):
                    count([outcome])
                else:
                    sent.put((item[0], item[1], outcome))
                work.task_done()

    def recorder() -> None:
        """Record receipts in batches: whatever arrived while the previous batch was written."""
        with app.app_context():  # type: ignore[attr-defined]
            while True:
                batch = [sent.get()]
                # Gather what arrives shortly after: a transaction's cost is mostly per batch.
                until = time.monotonic() + RECORD_LINGER
                while len(batch) < RECORD_BATCH and batch[-1] is not None:
                    try:
                        batch.append(sent.get(timeout=max(0.0, until - time.monotonic())))
                    except queue.Empty:
                        break
                done = [item for item in batch if item is not None]
                if done:
                    try:
                        count(batches.record(forwarder, db.session(), done))
                    finally:
                        db.session.remove()
                for _ in batch:
                    sent.task_done()
                if len(done) < len(batch):
                    return

    def applier() -> None:
        """Move cases by the stage events the callbacks kept, in each case's order."""
        from domain.forwarding import events

        with app.app_context():  # type: ignore[attr-defined]
            while not stop.is_set():
                moved = 0
                try:
                    moved = events.apply_pending(db.session(), forwarder.profile)
                except Exception:  # the events stay kept; try again shortly
                    log.exception("applying stage events failed")
                    db.session.rollback()
                finally:
                    db.session.remove()
                with lock:
                    counts["events_applied"] = counts.get("events_applied", 0) + moved
                if moved < events.APPLY_BATCH:  # a full batch means more are waiting
                    stop.wait(poll)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    helpers = [threading.Thread(target=applier, daemon=True), threading.Thread(target=recorder, daemon=True)]
    for t in helpers + pool:
        t.start()
    try:
        while not stop.is_set():
            room = threads * 2 - work.qsize()
            if room < threads:  # the senders are busy: look again in a moment, not after a poll
                time.sleep(0.005)
                continue
            built: list = []
            try:
                claimed = forwarder.claim(db.session(), room)
                built, skipped = batches.prepare(forwarder, db.session(), claimed)
                count(skipped)
            except Exception:  # database away: claimed rows come back when their leases end
                log.exception("claim failed")
                db.session.rollback()
            finally:
                db.session.remove()
            for item in built:
                work.put(item)
            if not built:
                if once and work.unfinished_tasks == 0 and sent.unfinished_tasks == 0:
                    break
                time.sleep(poll)
    finally:
        work.join()
        for _ in pool:
            work.put(None)
        for t in pool:
            t.join(timeout=10)
        sent.put(None)
        stop.set()
        for t in helpers:
            t.join(timeout=10)
    return counts


def _pool_sized(threads: int | None) -> object:
    from config import load_config

    cfg = load_config()
    cfg.DATABASE_POOL_SIZE = max(cfg.DATABASE_POOL_SIZE, (threads or cfg.FORWARDER_THREADS) + 3)
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop when nothing is due")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    import os

    threads = args.threads or int(os.environ.get("FORWARDER_THREADS") or 0) or None
    # Every sending thread, the claimer and the applier hold a connection at once: a pool
    # smaller than that opens and closes a PostgreSQL connection per delivery.
    app = create_app(_pool_sized(threads))
    with app.app_context():
        threads = args.threads or app.config["FORWARDER_THREADS"]
        log.info("forwarder started", extra={"threads": threads})
        counts = run(app, threads=threads, once=args.once)
        log.info("forwarder stopped", extra=counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
