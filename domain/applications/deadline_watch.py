"""Due-soon and overdue notices for open cases (the citizen hears when a promise is at risk).

A case whose clock runs (accepted, not paused, not final) gets one `due_soon` notice when its
due date is at most `soon_days` days away and one `overdue` notice when the date has passed.
Keyed by the due date: a pause that moves the date back makes the next notice possible again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from domain.applications import states
from domain.applications.deadlines import local_date
from domain.applications.models import Application, ApplicationNotice

_A = Application
_COLUMNS = (_A.id, _A.account_id, _A.due_on, _A.status, _A.case_number, _A.service_name)


def watch(session: Session, now: datetime, *, soon_days: int = 2, limit: int = 5000) -> int:
    """Add the notices that are due (flushed, not committed); how many were added. The cases are
    read `limit` at a time in id order, all of them: an overdue case stays in the set until it
    ends, so reading only the first `limit` each run would tell no case beyond them, ever."""
    today = local_date(now)
    added = 0
    after = ""
    while True:
        rows = session.execute(
            select(*_COLUMNS)
            .where(
                _A.due_on.is_not(None),
                _A.due_on <= today + timedelta(days=soon_days),
                _A.paused_on.is_(None),  # the clock runs: not paused, not final
                _A.status.not_in(states.FINAL),
                _A.id > after,
            )
            .order_by(_A.id)
            .limit(limit)
        ).all()
        added += _notify(session, rows, today, now)
        if len(rows) < limit:
            return added
        after = rows[-1].id


def _notify(session: Session, rows: Sequence[Row[Any]], today: date, now: datetime) -> int:
    wanted = {}
    for row in rows:
        kind = "overdue" if today > row.due_on else "due_soon"  # deadlines.is_overdue of a running clock
        wanted[f"{row.id}:{kind}:{row.due_on.isoformat()}"] = (row, kind)
    if not wanted:
        return 0
    have = set(
        session.scalars(select(ApplicationNotice.dedupe_key).where(ApplicationNotice.dedupe_key.in_(wanted)))
    )
    added = 0
    for key, (row, kind) in wanted.items():
        if key in have:
            continue
        params = {
            "case_number": row.case_number, "service_name": row.service_name, "status": row.status,
            "status_label": states.label(row.status), "due_date": row.due_on.isoformat(),
        }  # fmt: skip
        session.add(ApplicationNotice(dedupe_key=key, account_id=row.account_id, application_id=row.id,
                                      event_type=kind, params=params, created_at=now))  # fmt: skip
        added += 1
    session.flush()
    return added
