"""Due-soon and overdue notices for open cases (the citizen hears when a promise is at risk).

A case whose clock runs (accepted, not paused, not final) gets one `due_soon` notice when its
due date is at most `soon_days` days away and one `overdue` notice when the date has passed.
Keyed by the due date: a pause that moves the date back makes the next notice possible again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.applications import states
from domain.applications.deadlines import is_overdue, local_date
from domain.applications.models import Application, ApplicationNotice


def watch(session: Session, now: datetime, *, soon_days: int = 2, limit: int = 5000) -> int:
    """Add the notices that are due (flushed, not committed); how many were added."""
    today = local_date(now)
    apps = session.scalars(
        select(Application)
        .where(
            Application.due_on.is_not(None),
            Application.due_on <= today + timedelta(days=soon_days),
            Application.paused_on.is_(None),
            Application.status.not_in(states.FINAL),
        )
        .limit(limit)
    ).all()
    wanted = {}
    for app in apps:
        kind = "overdue" if is_overdue(app, now) else "due_soon"
        wanted[f"{app.id}:{kind}:{app.due_on.isoformat()}"] = (app, kind)
    if not wanted:
        return 0
    have = set(
        session.scalars(select(ApplicationNotice.dedupe_key).where(ApplicationNotice.dedupe_key.in_(wanted)))
    )
    added = 0
    for key, (app, kind) in wanted.items():
        if key in have:
            continue
        params = {
            "case_number": app.case_number, "service_name": app.service_name, "status": app.status,
            "status_label": states.label(app.status), "due_date": app.due_on.isoformat(),
        }  # fmt: skip
        session.add(ApplicationNotice(dedupe_key=key, account_id=app.account_id, application_id=app.id,
                                      event_type=kind, params=params, created_at=now))  # fmt: skip
        added += 1
    session.flush()
    return added
