"""Invite the citizen to rate a completed case (好差评), an hour after it completed, once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from domain.applications import states
from domain.applications.models import Application, ApplicationEvent, ApplicationNotice
from domain.evaluations.models import Evaluation

INVITE_AFTER = timedelta(hours=1)
INVITE_WITHIN = timedelta(days=30)


def invite(session: Session, now: datetime, *, limit: int = 1000) -> int:
    """Add `evaluation_invite` notices for cases completed a while ago and not rated (flushed)."""
    A, E = Application, ApplicationEvent
    completed = (
        select(A, E.at)
        .join(E, and_(E.application_id == A.id, E.to_status == states.COMPLETED))
        .where(
            A.status.in_((states.COMPLETED, states.RESULT_DELIVERED)),
            E.at <= now - INVITE_AFTER,
            E.at > now - INVITE_WITHIN,
            ~exists().where(Evaluation.application_id == A.id),
            ~exists().where(ApplicationNotice.dedupe_key == A.id + ":evaluation_invite"),
        )
        .limit(limit)
    )
    added = 0
    for app, _at in session.execute(completed).all():
        session.add(ApplicationNotice(
            dedupe_key=f"{app.id}:evaluation_invite", account_id=app.account_id, application_id=app.id,
            event_type="evaluation_invite", created_at=now,
            params={"case_number": app.case_number, "service_name": app.service_name},
        ))  # fmt: skip
        added += 1
    session.flush()
    return added
