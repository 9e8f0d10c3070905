"""Writing jobs into the outbox and handing them to Redis after the transaction commits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from core import clock, keyset
from core.errors import AppError
from core.outbox.models import DEAD, PENDING, SCRUBBED_AT_KEY, OutboxJob

log = logging.getLogger(__name__)

# The RQ entry point, named by string so core never imports the workers layer.
JOB_ENTRYPOINT = "workers.jobs.execute_outbox_job"
_SESSION_KEY = "outbox_new_ids"


@dataclass
class OutboxSettings:
    queue: str = "yiwang"
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    run_timeout: int = 120
    enqueue_timeout: int = 60
    enqueue_on_commit: bool = True

    @classmethod
    def from_config(cls, cfg: Any) -> OutboxSettings:
        return cls(
            queue=cfg["OUTBOX_QUEUE"],
            max_attempts=cfg["OUTBOX_MAX_ATTEMPTS"],
            backoff_base=cfg["OUTBOX_BACKOFF_BASE"],
            backoff_cap=cfg["OUTBOX_BACKOFF_CAP"],
            run_timeout=cfg["OUTBOX_RUN_TIMEOUT"],
            enqueue_timeout=cfg["OUTBOX_ENQUEUE_TIMEOUT"],
            enqueue_on_commit=cfg["OUTBOX_ENQUEUE_ON_COMMIT"],
        )


class Outbox:
    """Process-wide outbox wiring: settings and the Redis connection used to enqueue."""

    def __init__(self) -> None:
        self.settings = OutboxSettings()
        self.redis: Redis | None = None

    def configure(self, settings: OutboxSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis

    def queue(self) -> Queue:
        assert self.redis is not None, "outbox not configured"
        return Queue(self.settings.queue, connection=self.redis)

    def enqueue_ids(self, job_ids: list[str]) -> int:
        """Push job ids to RQ; failures are logged and left to the sweeper."""
        if not job_ids or self.redis is None:
            return 0
        sent = 0
        try:
            queue = self.queue()
            for job_id in job_ids:
                queue.enqueue(
                    JOB_ENTRYPOINT,
                    job_id,
                    result_ttl=0,
                    failure_ttl=3600,
                    job_timeout=self.settings.run_timeout,
                    description=f"outbox {job_id}",
                )
                sent += 1
        except RedisError as exc:
            log.warning("outbox enqueue failed; the sweeper will retry", extra={"error": str(exc)})
        return sent


outbox = Outbox()


# However short the backoff, a job spanning a period is tried at most this often.
MAX_SPANNING_ATTEMPTS = 200


def attempts_spanning(seconds: float, settings: OutboxSettings | None = None) -> int:
    """The attempts a job needs for its retries to span at least `seconds` at the shortest
    jitter of `backoff_seconds` (never fewer than the settings' own `max_attempts`, never more
    than MAX_SPANNING_ATTEMPTS: a backoff capped at a few seconds spans less)."""
    s = settings or outbox.settings
    if s.backoff_base <= 0 or s.backoff_cap <= 0:
        return s.max_attempts
    attempts, spanned = 1, 0.0
    while spanned < seconds and attempts < MAX_SPANNING_ATTEMPTS:
        spanned += backoff_seconds(attempts, s, 0.0)
        attempts += 1
    return max(attempts, s.max_attempts)


def add(
    session: Session, name: str, payload: dict[str, Any], *, max_attempts: int | None = None
) -> OutboxJob:
    """Add a job to the caller's transaction; it is enqueued only if that transaction commits."""
    now = clock.now()
    job = OutboxJob(
        name=name,
        payload=payload,
        status=PENDING,
        attempts=0,
        max_attempts=max_attempts or outbox.settings.max_attempts,
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
    )
    session.add(job)
    session.flush()
    session.info.setdefault(_SESSION_KEY, []).append(job.id)
    return job


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    ids = session.info.pop(_SESSION_KEY, None)
    if ids and outbox.settings.enqueue_on_commit:
        outbox.enqueue_ids(ids)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_SESSION_KEY, None)


def list_jobs(session: Session, *, status: str | None = None, limit: int = 100) -> list[OutboxJob]:
    """Jobs, newest first, optionally filtered by status."""
    stmt = select(OutboxJob).order_by(OutboxJob.created_at.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxJob.status == status)
    return list(session.scalars(stmt))


class BadJobCursor(AppError):
    status = 400
    code = "jobs.bad_cursor"
    message_zh = "分页游标无效，请从第一页重新加载"
    message_en = "The page cursor is invalid; load from the first page"


def page_jobs(
    session: Session, *, status: str | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[list[OutboxJob], str | None]:
    """(jobs newest first, then by id descending; the next page's cursor or None on the last).

    The cursor is the last row's (created_at, id), so jobs written meanwhile never shift a
    page; 400 `jobs.bad_cursor` (BadJobCursor) for a malformed one."""
    J = OutboxJob
    stmt = select(J)
    if status:
        stmt = stmt.where(J.status == status)
    return keyset.time_id_page(
        session,
        stmt,
        J.created_at,
        J.id,
        cursor=cursor,
        limit=limit,
        bad_cursor=BadJobCursor,
        newest_first=True,
    )


def replay(session: Session, job_id: str) -> OutboxJob | None:
    """Put a dead job back to pending with fresh attempts; enqueued on commit. None (nothing
    changed) unless it is dead with its payload whole: one whose personal data the sweeper erased
    cannot run again. One conditional update, so a sweeper erasing it meanwhile cannot be missed."""
    now = clock.now()
    res = session.execute(
        update(OutboxJob)
        .where(
            OutboxJob.id == job_id,
            OutboxJob.status == DEAD,
            OutboxJob.payload[SCRUBBED_AT_KEY].as_string().is_(None),
        )
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            updated_at=now,
            finished_at=None,
            locked_until=None,
            enqueued_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return None
    session.info.setdefault(_SESSION_KEY, []).append(job_id)
    return session.get(OutboxJob, job_id, populate_existing=True)


def backoff_seconds(attempts: int, settings: OutboxSettings, rand: float) -> float:
    """Capped exponential backoff with equal jitter; `rand` in [0, 1)."""
    # The exponent stops at 60: past it the cap has long applied, and 2 ** 1100 is no float.
    ceiling = min(settings.backoff_cap, settings.backoff_base * (2 ** min(60, max(0, attempts - 1))))
    return ceiling / 2 + rand * ceiling / 2


def timeout_delta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
