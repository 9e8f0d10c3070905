"""`python -m workers.sweeper`: re-enqueue lost or due jobs and rebuild revocations, forever."""

from __future__ import annotations

import logging
import signal
import sys
import time

from core.db import db
from core.outbox.service import outbox
from core.outbox.sweeper import sweep
from domain.identity.service import expire_abandoned
from factory import create_app

log = logging.getLogger("yiwang.sweeper")


def run_once() -> dict:
    """One sweep pass; returns what it did."""
    from api.deps import services

    session = db.session()
    try:
        report = sweep(session, outbox)
        rebuilt = services().revocations.rebuild(session)
        expired = expire_abandoned(session)
        return {**vars(report), "revocations": rebuilt, "verifications_expired": expired}
    finally:
        db.session.remove()


def main(argv: list[str] | None = None) -> int:
    once = "--once" in (argv or sys.argv[1:])
    app = create_app()
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    with app.app_context():
        interval = app.config["OUTBOX_SWEEP_INTERVAL"]
        while not stop["flag"]:
            try:
                result = run_once()
                if any(result.values()):
                    log.info("sweep", extra=result)
            except Exception:
                log.exception("sweep failed")
            if once:
                break
            time.sleep(interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
