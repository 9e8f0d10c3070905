"""Audit trail: who did what to which object, and every read of a full personal value."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import clock
from core.db import Base, IdMixin, UTCDateTime, new_id


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


def record(session: Session, **fields: Any) -> AuditEvent:
    """Add an audit event to the caller's transaction; `fields` as for `event_values` (never put
    personal values in details)."""
    event = AuditEvent(**event_values(**fields))
    session.add(event)
    return event


def event_values(
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
) -> dict[str, Any]:
    """The columns of one audit event. Every string is cut to its column, so an odd value can
    never fail (and so drop) the audit row."""
    return {
        "id": new_id(),
        "at": clock.now(),
        "actor_type": actor_type[:16],
        "actor_id": _cut(actor_id, 64),
        "action": action[:64],
        "target_type": _cut(target_type, 32),
        "target_id": _cut(target_id, 64),
        "outcome": outcome[:16],
        "ip": _cut(ip, 64),
        "request_id": _cut(request_id, 64),
        "details": details,
    }


def insert_now(session: Session, events: list[dict[str, Any]]) -> None:
    """Write events built by `event_values` in the caller's transaction at once, in one
    statement (paths that write with Core rather than the ORM)."""
    if events:
        session.connection().execute(insert(AuditEvent.__table__), events)
