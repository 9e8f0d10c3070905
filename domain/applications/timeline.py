"""The case timeline: one event per transition, numbered per application."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from core.db import new_id
from core.db_statements import insert_rows
from domain.applications.models import Application, ApplicationEvent

# The next seq is computed in the event's INSERT (no round trip of its own). The caller holds
# the application's row lock, so no other transaction numbers an event of it meanwhile.
NEXT_SEQ = (
    select(func.coalesce(func.max(ApplicationEvent.seq), 0) + 1)
    .where(ApplicationEvent.application_id == bindparam("seq_application_id"))
    .scalar_subquery()
)
EVENTS = ApplicationEvent.__table__


def event_row(
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
) -> tuple[Any, dict[str, Any]]:
    """The event as a row for `core.db_statements.insert_rows`, with `{"seq_application_id": app.id}` as
    its params; at most one event of an application per call (its seq is read before the call)."""
    return EVENTS, {
        "id": new_id(), "application_id": app.id, "seq": NEXT_SEQ, "at": at, "from_status": from_status,
        "to_status": to_status, "actor_type": actor_type, "actor_id": actor_id, "note": note,
        "details": details, "external_id": external_id,
    }  # fmt: skip


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
) -> None:
    """Insert the next event now, in the caller's transaction (which holds the application's
    row lock, so seq is unique); the application row must exist."""
    row = event_row(
        app, from_status, to_status, at, actor_type=actor_type, actor_id=actor_id, note=note,
        details=details, external_id=external_id,
    )  # fmt: skip
    insert_rows(session, [row], {"seq_application_id": app.id})
