"""The outbox table: one row per job, from creation to a final state."""

from __future__ import annotations

from datetime import datetime

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
