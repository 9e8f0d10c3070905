"""The case timeline: one event per transition, numbered per application."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from domain.applications.models import Application, ApplicationEvent

# Built once: building the expression per event cost more than running it. It goes into the
# event's INSERT (no round trip of its own); the ORM inserts a row carrying an SQL expression on
# its own, so two events of one application in one flush are numbered one after the other.
_NEXT_SEQ = (
    select(func.coalesce(func.max(ApplicationEvent.seq), 0) + 1)
    .where(ApplicationEvent.application_id == bindparam("of_application"))
    .scalar_subquery()
)


def add_event(
    session: Session,
    app: Application,
    from_status: str | None,
    to_status: str,
    at: datetime,
    *,
    actor_type: str,
    actor_id: str | None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
    external_id: str | None = None,
) -> ApplicationEvent:
    """Add the next event; the caller holds the application's row lock, so seq is unique."""
    event = ApplicationEvent(
        application_id=app.id, seq=_NEXT_SEQ.params(of_application=app.id), at=at, from_status=from_status,
        to_status=to_status, actor_type=actor_type, actor_id=actor_id, note=note,
        details=details, external_id=external_id,
    )  # fmt: skip
    session.add(event)
    return event
