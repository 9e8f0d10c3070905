"""The promised time limit of a case: due date, pauses, expected completion and overdue.

The clock starts on acceptance (受理); while a supplement is requested or a special procedure
runs it stands still, and the working days it stood still push the due date back. For a bundle
the latest due date of its items counts. Dates are Beijing dates on the catalog calendar of the
item's region (domain/calendar). The working days of a pause are counted when it ends; the
timeline keeps the pauses themselves (`pauses`), so a later change to the calendar recounts them
(domain/applications/calendar_changes.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.clock import local_date
from domain.applications import states
from domain.applications.models import Application
from domain.calendar import service as calendar


def compute_due(
    session: Session,
    start: date,
    limits: tuple[dict[str, Any], ...],
    *,
    paused: int,
    region: str,
    paused_days: int = 0,
) -> date:
    """The latest due date of `limits` counted from `start`, moved back by the pauses: a limit in
    working days by the `paused` working days, one in natural days or months by the
    `paused_days` calendar days (then rolled to a working day, as any such limit's end)."""
    due = start
    for limit in limits:
        if limit is None:
            continue
        if limit["unit"] == calendar.UNIT_WORKING_DAY:
            one = calendar.due_date(session, start, limit["value"], limit["unit"], region=region).due
            if paused:
                one = calendar.add_working_days(session, one, paused, region=region)
        else:
            later = start + timedelta(days=paused_days)
            one = calendar.due_date(session, later, limit["value"], limit["unit"], region=region).due
        due = max(due, one)
    return due


def on_transition(
    session: Session, app: Application, target: str, when: datetime, *, limits: tuple, region: str
) -> None:
    """Move the clock for a transition into `target` (called before the status changes)."""
    today = local_date(when)
    if target in states.ACCEPTANCE and app.clock_started_on is None:
        app.clock_started_on = today
    if app.clock_started_on is None:
        return
    calendar.hold(session)  # counted on the calendar as committed, not as an override changes it
    if target in states.PAUSED and app.paused_on is None:
        app.paused_on = today
    elif target not in states.PAUSED and app.paused_on is not None:
        app.paused_working_days += paused_working_days(session, [(app.paused_on, today)], region=region)
        app.paused_days = (app.paused_days or 0) + max(0, (today - app.paused_on).days)
        app.paused_on = None
    app.due_on = compute_due(
        session, app.clock_started_on, limits, paused=app.paused_working_days, region=region,
        paused_days=app.paused_days or 0,
    )  # fmt: skip


def pauses(moves: Iterable[tuple[str, datetime]]) -> list[tuple[date, date]]:
    """The pauses that ended, as (day the clock stopped, day it ran again), from the timeline's
    moves (target status and time, in timeline order), as `on_transition` made them."""
    started, paused_on = False, None
    ended: list[tuple[date, date]] = []
    for target, when in moves:
        today = local_date(when)
        started = started or target in states.ACCEPTANCE
        if not started:
            continue
        if target in states.PAUSED and paused_on is None:
            paused_on = today
        elif target not in states.PAUSED and paused_on is not None:
            ended.append((paused_on, today))
            paused_on = None
    return ended


def paused_working_days(session: Session, spans: Iterable[tuple[date, date]], *, region: str) -> int:
    """The working days the clock stood still in `spans`, on the calendar as it is now."""
    return sum(
        max(0, calendar.working_days_between(session, start, end, region=region)) for start, end in spans
    )


def is_overdue(app: Application, now: datetime) -> bool:
    if app.due_on is None or app.status in states.FINAL or app.paused_on is not None:
        return False
    return local_date(now) > app.due_on
