"""`python -m workers.rq_worker`: an RQ worker for the outbox queue, inside the app context."""

from __future__ import annotations

import logging
import sys
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from rq import SimpleWorker

from core.outbox.service import outbox
from core.redis import get_redis
from factory import create_app

log = logging.getLogger("yiwang.worker")


def main(argv: list[str] | None = None) -> int:
    burst = "--burst" in (argv or sys.argv[1:])
    app = create_app()
    with app.app_context():
        # SimpleWorker runs jobs in this process: no fork, so the database pool stays valid.
        # A killed worker loses at most its running job, which the sweeper recovers.
        worker = SimpleWorker([outbox.queue()], connection=get_redis())
        log.info("worker started", extra={"queue": outbox.settings.queue})
        return run(worker, burst=burst, logging_level=app.config["LOG_LEVEL"])


def run(worker: Any, *, burst: bool, logging_level: str) -> int:
    """Work until told to stop. Told to stop (Ctrl-C reaches every process of `make run`, the
    embedded Redis too), the worker cannot record its end in a Redis already gone: a clean stop
    all the same (the sweeper recovers a job that was running). Losing Redis otherwise fails."""
    try:
        worker.work(burst=burst, logging_level=logging_level, with_scheduler=False)
    except RedisConnectionError:
        if not worker._stop_requested:
            raise
        log.info("worker stopped; Redis had already gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
