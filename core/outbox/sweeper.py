"""The sweeper: recovers jobs lost by Redis or by a dead worker, and enqueues due retries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from core import clock
from core.db import in_batches
from core.outbox.models import (
    DEAD,
    PENDING,
    RETRYING,
    RUNNING,
    SCRUB_KEY,
    SUCCEEDED,
    OutboxJob,
    scrubbed,
)
from core.outbox.service import Outbox

SCRUB_BATCH = 200  # dead jobs scrubbed in one transaction
SCRUB_BATCHES = 10  # transactions at most in one pass; the rest waits for the next


@dataclass
class SweepReport:
    recovered: int = 0
    enqueued: int = 0
    purged: int = 0


def sweep(session: Session, outbox: Outbox, *, keep_succeeded_days: int = 7) -> SweepReport:
    """One pass; safe to run from several hosts at once (claims are conditional updates)."""
    settings = outbox.settings
    now = clock.now()
    report = SweepReport()

    # 1. Jobs whose worker died: the lock expired while still running.
    stuck = session.scalars(
        select(OutboxJob).where(OutboxJob.status == RUNNING, OutboxJob.locked_until < now)
    ).all()
    for job in stuck:
        exhausted = job.attempts >= job.max_attempts
        res = session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job.id, OutboxJob.status == RUNNING, OutboxJob.locked_until < now)
            .values(
                status=DEAD if exhausted else RETRYING,
                locked_until=None,
                next_attempt_at=now,
                updated_at=now,
                finished_at=now if exhausted else None,
                last_error="worker lost: run lock expired" + ("; attempts exhausted" if exhausted else ""),
            )
        )
        report.recovered += res.rowcount
    session.commit()

    # 2. Due jobs that Redis no longer holds (never enqueued, flushed, or retry now due).
    stale = now - timedelta(seconds=settings.enqueue_timeout)
    due = session.scalars(
        select(OutboxJob.id)
        .where(
            OutboxJob.status.in_((PENDING, RETRYING)),
            OutboxJob.next_attempt_at <= now,
            or_(
                and_(OutboxJob.enqueued_at.is_(None), OutboxJob.created_at < stale),
                and_(OutboxJob.status == PENDING, OutboxJob.enqueued_at < stale),
                and_(
                    OutboxJob.status == RETRYING,
                    or_(
                        OutboxJob.enqueued_at.is_(None),
                        OutboxJob.enqueued_at < OutboxJob.next_attempt_at,
                        OutboxJob.enqueued_at < stale,
                    ),
                ),
            ),
        )
        .limit(1000)
    ).all()
    if due:
        session.execute(update(OutboxJob).where(OutboxJob.id.in_(due)).values(enqueued_at=now))
        session.commit()
        report.enqueued = outbox.enqueue_ids(list(due))

    # 3. Retention: finished successes are kept a while for inspection, then purged.
    res = session.execute(
        delete(OutboxJob).where(
            OutboxJob.status == SUCCEEDED,
            OutboxJob.finished_at < now - timedelta(days=keep_succeeded_days),
        )
    )
    report.purged = res.rowcount
    session.commit()
    return report


def scrub_dead(session: Session, *, days: int, batch: int | None = None, batches: int | None = None) -> int:
    """Erase the personal data (the payload keys named in `_scrub`, and that list) of the jobs
    dead for more than `days`, marking each `_scrubbed_at`: kept until then for an operator's
    replay, refused after. `batch` jobs per transaction, at most `batches` of them; how many.

    Only rows still naming keys to scrub are read (`->>` on PostgreSQL, JSON_EXTRACT on SQLite:
    NULL for a missing key), so done rows are never read again and the rest goes next pass. A job
    replayed meanwhile is no longer dead and is left alone (the update checks the status)."""
    now = clock.now()
    done = 0
    pending = select(OutboxJob.id).where(
        OutboxJob.status == DEAD,
        OutboxJob.finished_at < now - timedelta(days=days),
        OutboxJob.payload[SCRUB_KEY].as_string().is_not(None),
    )

    def work(ids: list[str]) -> None:
        nonlocal done
        rows = session.execute(select(OutboxJob.id, OutboxJob.payload).where(OutboxJob.id.in_(ids)))
        for job_id, payload in rows.all():
            res = session.execute(
                update(OutboxJob)
                .where(OutboxJob.id == job_id, OutboxJob.status == DEAD)
                .values(payload=scrubbed(payload, now), updated_at=now)
                .execution_options(synchronize_session=False)
            )
            done += res.rowcount

    in_batches(session, pending, work, batch=batch or SCRUB_BATCH, batches=batches or SCRUB_BATCHES)
    return done
