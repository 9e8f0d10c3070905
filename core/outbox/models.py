"""The outbox table: one row per job, from creation to a final state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

PENDING = "pending"  # written, not yet handed to Redis
ENQUEUED = "enqueued"  # handed to Redis, waiting for a worker
RUNNING = "running"  # claimed by a worker until locked_until
RETRYING = "retrying"  # failed with a retryable error; next_attempt_at says when
SUCCEEDED = "succeeded"  # final
DEAD = "dead"  # final: permanent failure or attempts exhausted; replayable by an operator

ACTIVE_STATES = (PENDING, ENQUEUED, RUNNING, RETRYING)
FINAL_STATES = (SUCCEEDED, DEAD)

# payload["_scrub"] names the payload keys holding personal data (encrypted): erased once the job
# succeeded, or OUTBOX_DEAD_SCRUB_DAYS after it died (core/outbox/sweeper.py). A payload whose
# keys were erased that way says when in payload["_scrubbed_at"] (ISO 8601, UTC), and a job
# whose payload says so can no longer run: replaying it is refused.
SCRUB_KEY = "_scrub"
SCRUBBED_AT_KEY = "_scrubbed_at"


def scrubbed(payload: dict[str, Any], at: datetime) -> dict[str, Any]:
    """`payload` without the keys it names in `_scrub` nor that list, marked erased `at` when it
    named any (a job that named none stays replayable)."""
    named = set(payload.get(SCRUB_KEY) or ())
    kept = {k: v for k, v in payload.items() if k not in named | {SCRUB_KEY}}
    return kept | {SCRUBBED_AT_KEY: at.isoformat()} if named else kept


class OutboxJob(IdMixin, Base):
    __tablename__ = "outbox_jobs"
    __table_args__ = (Index("ix_outbox_jobs_status_next", "status", "next_attempt_at"),)

    name: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSON)

    def scrubbed_at(self) -> datetime | None:
        """When the personal data the payload named was erased from a job that had not run, if so."""
        value = (self.payload or {}).get(SCRUBBED_AT_KEY)
        return datetime.fromisoformat(value) if isinstance(value, str) else None
