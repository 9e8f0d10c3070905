"""Who acts in the admin area, writing their audit events, and reading the trail back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core import audit
from core.audit import AuditEvent
from core.errors import Text
from domain.operators.errors import UnknownAuditEvent


@dataclass(frozen=True)
class Actor:
    """The one responsible for an admin action: an operator, or the CLI ("system")."""

    type: str
    id: str | None
    ip: str | None = None
    request_id: str | None = None


CLI_ACTOR = Actor(type="system", id="cli")


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event for `actor` to the caller's transaction."""
    return audit.record(
        session,
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        ip=actor.ip,
        request_id=actor.request_id,
        details=details,
    )


def list_events(
    session: Session,
    *,
    actor_id: str | None = None,
    action: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    before: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AuditEvent], int]:
    """One page of audit events, newest first, and the total number matching the filters.

    `before` (an event's id) keeps only the events listed after it: an auditor who pages on from
    the last event shown sees no event twice while new ones arrive on top (each of the
    auditor's own requests adds one). Unknown id: UnknownAuditEvent."""
    conditions = []
    if before is not None:
        anchor = session.get(AuditEvent, before)
        if anchor is None:
            raise UnknownAuditEvent(fields={"before": [Text("no such event", "无此事件")]})
        conditions.append(
            or_(AuditEvent.at < anchor.at, and_(AuditEvent.at == anchor.at, AuditEvent.id < anchor.id))
        )
    if actor_id:
        conditions.append(AuditEvent.actor_id == actor_id)
    if action:
        conditions.append(AuditEvent.action == action)
    if target_id:
        conditions.append(AuditEvent.target_id == target_id)
    if since is not None:
        conditions.append(AuditEvent.at >= since)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    rows = session.scalars(
        select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total
