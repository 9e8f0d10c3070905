"""Operator view of background jobs: list them, look at one, replay a dead one."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.errors import Conflict
from core.outbox import service as outbox
from core.outbox.models import ACTIVE_STATES, DEAD, FINAL_STATES, OutboxJob
from domain.operators.audit_log import Actor, record
from domain.operators.errors import JobDataErased, JobNotDead, JobNotFound

JOB_STATUSES = ACTIVE_STATES + FINAL_STATES


def list_jobs(session: Session, *, status: str | None = None, limit: int = 100) -> list[OutboxJob]:
    """Jobs, newest first, optionally only those in `status`."""
    return outbox.list_jobs(session, status=status, limit=limit)


def get_job(session: Session, job_id: str) -> OutboxJob:
    """One job, or JobNotFound."""
    job = session.get(OutboxJob, job_id)
    if job is None:
        raise JobNotFound()
    return job


def _refuse_unless_replayable(job: OutboxJob) -> None:
    if job.status != DEAD:
        raise JobNotDead(details={"status": job.status}, status=job.status)
    if job.scrubbed_at() is not None:
        raise JobDataErased()


def replay(session: Session, *, actor: Actor, job_id: str) -> OutboxJob:
    """Put a dead job back in the queue with fresh attempts; it is enqueued on commit. Commits.
    409 JobNotDead for a job in another state, JobDataErased for one whose personal data the
    sweeper erased (it could only fail)."""
    _refuse_unless_replayable(get_job(session, job_id))
    replayed = outbox.replay(session, job_id)
    if replayed is None:  # changed since it was read (another operator, the sweeper): say how
        session.rollback()
        _refuse_unless_replayable(get_job(session, job_id))
        raise Conflict()  # replayed and dead again in between: the operator looks again
    # The last error may quote upstream text, so only the job name goes into the audit trail.
    record(
        session,
        actor,
        "job.replay",
        target_type="job",
        target_id=replayed.id,
        details={"name": replayed.name},
    )
    session.commit()
    return replayed
