"""The function RQ runs: execute one outbox job by id inside the worker's app context."""

from __future__ import annotations

from core.db import db
from core.outbox import dispatcher
from core.outbox.service import outbox
from workers.handlers import HANDLERS


def execute_outbox_job(job_id: str) -> str:
    """Run outbox job `job_id` (no-op if it is not due or already taken)."""
    session = db.session()
    try:
        return dispatcher.execute(session, job_id, handlers=HANDLERS, settings=outbox.settings)
    finally:
        db.session.remove()
