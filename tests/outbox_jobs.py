"""Running outbox jobs in a test as the RQ worker would: no worker runs under pytest."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from core.outbox.models import ENQUEUED, PENDING, RETRYING, OutboxJob
from workers.jobs import execute_outbox_job

CALENDAR_FOLLOW = "calendar.follow"


def jobs_named(name: str) -> list[OutboxJob]:
    """The jobs called `name`, oldest first, read afresh (a run removes the session)."""
    session = db.session()
    session.expire_all()
    named = select(OutboxJob).where(OutboxJob.name == name).order_by(OutboxJob.created_at)
    return list(session.scalars(named))


def run_jobs(name: str) -> list[str]:
    """Run every due job called `name` once; the state each ended its attempt in. The ids are read
    before any runs: a run removes the session the rest were loaded in."""
    due = [job.id for job in jobs_named(name) if job.status in (PENDING, ENQUEUED, RETRYING)]
    return [execute_outbox_job(job_id) for job_id in due]


def follow_calendar() -> list[str]:
    """Run the follow-ups of the calendar overrides entered so far (cases, halls, rectifications)."""
    return run_jobs(CALENDAR_FOLLOW)
