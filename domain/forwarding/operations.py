"""What operators see and do: queue figures, dead letters to inspect, correct and replay."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from core import audit, clock, keyset
from core.db import take_write_lock
from domain.applications import states
from domain.applications.models import Application, ForwardingOutbox
from domain.forwarding import delivery
from domain.forwarding.errors import BadCursor, CaseWithdrawn, NotDeadLetter, RowNotFound
from domain.forwarding.models import WAITING, ProvinceEvent


def stats(session: Session) -> dict[str, Any]:
    """Queue depth per state, the oldest undelivered row's age, retries and dead letters."""
    F = ForwardingOutbox
    by_state = dict(session.execute(select(F.state, func.count()).group_by(F.state)).all())
    oldest = session.scalar(select(func.min(F.created_at)).where(F.state.in_(delivery.ACTIVE)))
    retried = session.scalar(select(func.count()).where(F.state.in_(delivery.ACTIVE), F.attempts > 1)) or 0
    waiting = session.scalar(select(func.count()).where(ProvinceEvent.state == WAITING)) or 0
    now = clock.now()
    return {
        "queue_depth": sum(by_state.get(s, 0) for s in delivery.ACTIVE),
        "by_state": {
            s: int(by_state.get(s, 0))
            for s in (*delivery.ACTIVE, delivery.DELIVERED, delivery.DEAD, delivery.CANCELLED)
        },
        "oldest_pending_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        "retrying": int(by_state.get(delivery.RETRYING, 0)),
        "retried_in_queue": int(retried),
        "dead_letters": int(by_state.get(delivery.DEAD, 0)),
        "events_waiting": int(waiting),
    }


def rows(
    session: Session, *, state: str | None, cursor: str | None = None, limit: int = 50
) -> tuple[list[ForwardingOutbox], str | None]:
    """(forwarding rows newest first, then by id descending; the next page's cursor or None on
    the last). The cursor is the last row's (created_at, id): rows written meanwhile never shift
    a page; 400 `forwarding.bad_cursor` for a malformed one."""
    F = ForwardingOutbox
    stmt = select(F)
    if state:
        stmt = stmt.where(F.state == state)
    return keyset.time_id_page(
        session, stmt, F.created_at, F.id, cursor=cursor, limit=limit, bad_cursor=BadCursor, newest_first=True
    )


def get(session: Session, row_id: str) -> ForwardingOutbox:
    row = session.get(ForwardingOutbox, row_id)
    if row is None:
        raise RowNotFound()
    return row


# The locked row as it is now, not a copy the session read before the lock.
_LOCKED = (
    select(ForwardingOutbox)
    .where(ForwardingOutbox.id == bindparam("row_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def correct(
    session: Session, row_id: str, *, overrides: dict[str, Any] | None, operator_id: str
) -> ForwardingOutbox:
    """Set the fields laid over the upstream body (e.g. a field the province's validation wants).
    The row is locked before its state is judged, on SQLite too (its write lock): a replay
    committing meanwhile leaves it no longer dead, and the correction is refused rather than laid
    over a row already sent again without it."""
    take_write_lock(session, ForwardingOutbox.__table__, ForwardingOutbox.id == row_id)
    row = session.scalar(_LOCKED, {"row_id": row_id})
    if row is None:
        raise RowNotFound()
    if row.state != delivery.DEAD:
        raise NotDeadLetter(state=row.state)
    row.overrides = overrides or None
    audit.record(
        session, actor_type="operator", actor_id=operator_id, action="forwarding.corrected",
        target_type="forwarding_outbox", target_id=row.id, details={"keys": sorted((overrides or {}).keys())},
    )  # fmt: skip
    session.commit()
    return row


def replay(session: Session, row_id: str, *, operator_id: str) -> ForwardingOutbox:
    """Send a dead letter again. The attempt count goes on (it fences off a worker that claimed the
    row before it died and wakes up now: a count started afresh would match that worker's claim);
    the maximum age starts again."""
    app_id = session.scalar(select(ForwardingOutbox.application_id).where(ForwardingOutbox.id == row_id))
    if app_id is None:
        raise RowNotFound()
    # The case first, then the row: the order a withdrawal takes them in (it locks the case and
    # cancels the dead row). Read the other way round, a withdrawal committing meanwhile saw the
    # row replayed (no longer dead, a send attempted) and let it go out before itself.
    take_write_lock(session, Application.__table__, Application.id == app_id)  # SQLite: FOR UPDATE is ignored
    status = session.scalar(select(Application.status).where(Application.id == app_id).with_for_update())
    row = session.scalar(_LOCKED, {"row_id": row_id})
    if row is None:
        raise RowNotFound()
    if row.state != delivery.DEAD:
        raise NotDeadLetter(state=row.state)
    if row.kind != "withdraw" and status == states.WITHDRAWN:
        # The citizen withdrew the case after this send died: its data is not to go out now
        # (the withdrawal follows without waiting for it).
        raise CaseWithdrawn()
    now = clock.now()
    row.state, row.next_attempt_at, row.locked_until = delivery.PENDING, now, None
    # A replay restarts the maximum-age clock, or an old row would die again at once.
    row.replayed_at = now
    delivery.mark_case_views(session, row.application_id)  # "delayed" no more
    audit.record(
        session, actor_type="operator", actor_id=operator_id, action="forwarding.replayed",
        target_type="forwarding_outbox", target_id=row.id, details={"case_number": row.case_number},
    )  # fmt: skip
    session.commit()
    return row
