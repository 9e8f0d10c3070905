"""Stage events received from the province, kept so each applies once and in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

APPLIED = "applied"
WAITING = "waiting"  # an earlier seq has not arrived yet
IGNORED = "ignored"  # in order, but not a move the case can make now (recorded, not applied)


class ProvinceEvent(IdMixin, Base):
    __tablename__ = "province_events"
    __table_args__ = (
        UniqueConstraint("profile", "event_id"),
        UniqueConstraint("application_id", "seq"),
    )

    profile: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(24))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))  # callback, reconcile
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(200))
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ProvinceNonce(Base):
    """A callback's nonce, kept while its timestamp could still pass (signing.NONCE_TTL): a second
    request with it is a replay. Recorded in the statement that keeps the event, so a nonce is
    used up exactly when its request is answered; the sweeper purges old ones."""

    __tablename__ = "province_nonces"

    profile: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
