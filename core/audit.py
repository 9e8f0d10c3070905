"""Audit trail: who did what to which object, and every read of a full personal value."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import clock
from core.db import Base, IdMixin, UTCDateTime


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"

    at: Mapped[Any] = mapped_column(UTCDateTime(), index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # citizen, operator, system
    actor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


def record(
    session: Session,
    *,
    actor_type: str,
    actor_id: str | None,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: str = "ok",
    ip: str | None = None,
    request_id: str | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Add an audit event to the caller's transaction (never put personal values in details)."""
    # Cut every string to its column, so an odd value can never fail (and so drop) the audit row.
    event = AuditEvent(
        at=clock.now(),
        actor_type=actor_type[:16],
        actor_id=_cut(actor_id, 64),
        action=action[:64],
        target_type=_cut(target_type, 32),
        target_id=_cut(target_id, 64),
        outcome=outcome[:16],
        ip=_cut(ip, 64),
        request_id=_cut(request_id, 64),
        details=details,
    )
    session.add(event)
    return event
