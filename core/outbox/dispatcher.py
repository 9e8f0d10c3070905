"""Running one outbox job: claim, call its handler, record a retry or a final state."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from core import clock
from core.errors import PermanentError
from core.outbox.models import (
    DEAD,
    PENDING,
    RETRYING,
    RUNNING,
    SCRUB_KEY,
    SUCCEEDED,
    OutboxJob,
)
from core.outbox.service import OutboxSettings, backoff_seconds, timeout_delta

log = logging.getLogger(__name__)

Handler = Callable[..., Any]


def _claim(session: Session, job_id: str, settings: OutboxSettings) -> bool:
    now = clock.now()
    result = session.execute(
        update(OutboxJob)
        .where(
            OutboxJob.id == job_id,
            OutboxJob.status.in_((PENDING, RETRYING)),
            OutboxJob.next_attempt_at <= now,
        )
        .values(
            status=RUNNING,
            attempts=OutboxJob.attempts + 1,
            locked_until=now + timeout_delta(settings.run_timeout),
            updated_at=now,
        )
    )
    session.commit()
    return result.rowcount == 1


def execute(
    session: Session,
    job_id: str,
    *,
    handlers: Mapping[str, Handler],
    settings: OutboxSettings,
) -> str:
    """Run job `job_id` once if it is due; return the state it ends this attempt in."""
    if not _claim(session, job_id, settings):
        return "skipped"
    job = session.get(OutboxJob, job_id)
    assert job is not None
    attempt = job.attempts  # our claim: a later reclaim bumps it, and then we may not finish
    handler = handlers.get(job.name)
    if handler is None:
        return _finish(session, job_id, attempt, DEAD, error=f"no handler registered for {job.name!r}")
    if job.scrubbed_at() is not None:  # a replay refuses it; this is for one let through anyway
        return _finish(session, job_id, attempt, DEAD, error="personal data erased: cannot run again")
    payload = {k: v for k, v in job.payload.items() if k != SCRUB_KEY}
    # Keys named in payload["_scrub"] (e.g. encrypted personal data) are erased once the job
    # has succeeded: the row stays for inspection without what it no longer needs.
    scrubbed = {k: v for k, v in payload.items() if k not in set(job.payload.get(SCRUB_KEY) or ())}
    try:
        result = handler(session=session, job_id=job.id, **payload)
        session.commit()
    except PermanentError as exc:
        session.rollback()
        log.warning("job failed permanently", extra={"job_id": job_id, "job": job.name})
        return _finish(session, job_id, attempt, DEAD, error=f"permanent: {exc}")
    except Exception as exc:
        session.rollback()
        job = session.get(OutboxJob, job_id)
        assert job is not None
        error = f"{type(exc).__name__}: {exc}"
        if job.attempts >= job.max_attempts:
            return _finish(session, job_id, attempt, DEAD, error=f"attempts exhausted; last error {error}")
        delay = backoff_seconds(job.attempts, settings, random.random())
        log.info("job will retry", extra={"job_id": job_id, "job": job.name, "delay": delay})
        return _finish(session, job_id, attempt, RETRYING, error=error, retry_in=delay)
    return _finish(
        session, job_id, attempt, SUCCEEDED,
        result=result if isinstance(result, dict) else None,
        payload=scrubbed if scrubbed != payload else None,
    )  # fmt: skip


def _finish(
    session: Session,
    job_id: str,
    attempt: int,
    status: str,
    *,
    error: str | None = None,
    result: dict | None = None,
    retry_in: float | None = None,
    payload: dict | None = None,
) -> str:
    now = clock.now()
    values: dict[str, Any] = {"status": status, "updated_at": now, "locked_until": None}
    if error is not None:
        values["last_error"] = error[:2000]
    if result is not None:
        values["result"] = result
    if status in (SUCCEEDED, DEAD):
        values["finished_at"] = now
    if retry_in is not None:
        values["next_attempt_at"] = now + timeout_delta(retry_in)
    if payload is not None:
        values["payload"] = payload
    # Only the claimant may finish: after a lock expired, the sweeper and another worker may
    # have taken the job again (attempts moved on), and that run owns the row now.
    res = session.execute(
        update(OutboxJob)
        .where(OutboxJob.id == job_id, OutboxJob.status == RUNNING, OutboxJob.attempts == attempt)
        .values(**values)
    )
    session.commit()
    return status if res.rowcount == 1 else "superseded"
