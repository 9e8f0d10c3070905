"""The citizen's period to decide on a rectification follows the calendar (as a case's due date,
domain/applications/calendar_changes.py).

`decide_by` is counted when the response is given, on the calendar as it is then. Operators enter
a typhoon closure, or the State Council's arrangement for a year the holiday library does not
know yet, when it is announced, often after periods counting through that day were given:
without this, the citizen lost the working day closed (the sweeper confirmed by default a day
early, counting the closure against them).

The fair rule: a recount may give the citizen time, never take it. A day closed inside the period
moves `decide_by` (and the reminder day) later; a day opened there (a make-up working day, a
closure withdrawn) leaves `decide_by` as it is: the citizen was told the date (the app, the
response's SMS), and a confirmation by default before it would be one they never agreed to. So a
period never ends before today, nor before any day it was shown. A reminder already sent in the
round is not sent again (`decide_reminded_round` stays); one not yet sent comes on the new day.

The department's deadline of a round (`due_on`, open or appealed) follows both ways, as a case's
due date: it is the department's time limit, not a date a citizen must act by. A round escalated
as overdue only because a closure was not yet entered is no longer overdue once it is
(`escalated_at` cleared when the new deadline has not passed; the sweeper escalates it again if
it passes).

Lock ordering, as for cases: every count of a period takes the calendar's lock shared
(`calendar.hold`) in the transaction that writes it, and an override's write takes it
exclusively and commits before this runs. A response given while an override is entered either
counts on the new calendar or is committed, and so seen here; recounting it again is harmless
(the same count).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import date

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from core import clock
from core.errors import AppError
from domain.applications.deadlines import local_date
from domain.calendar import service as calendar
from domain.evaluations.models import APPEALED, OPEN, RESPONDED, RectificationTask
from domain.evaluations.rectification import (
    DECIDE_WORKING_DAYS,
    REMIND_WORKING_DAYS_BEFORE,
    last_day_to_decide_from,
    region_of,
    remind_day,
)
from domain.evaluations.service import RECTIFY_WORKING_DAYS

BATCH = 500

log = logging.getLogger(__name__)


def follow(
    session: Session, *, day: date, region: str, decide_days: int = DECIDE_WORKING_DAYS,
    remind_days: int = REMIND_WORKING_DAYS_BEFORE, working_days: int = RECTIFY_WORKING_DAYS,
) -> int:  # fmt: skip
    """Recount, in a region under `region` (000000: every region), the periods awaiting the
    citizen's decision that span `day` (after the day they started, up to their `decide_by`) and
    their reminder days (`remind_days` working days before; 0: left as they are), and the
    deadlines of open or appealed rounds that span it; commits each batch. `decide_days` and
    `working_days` count what was given before its own number was kept. How many moved."""
    T = RectificationTask
    decide = T.status == RESPONDED, T.decide_by.is_not(None), T.decide_by >= day
    moved = sum(
        _isolated(session, task, lambda t: _recount(session, t, day, region, decide_days, remind_days))
        for task in _locked(session, *decide)
    )
    today = local_date(clock.now())
    answer = T.status.in_((OPEN, APPEALED)), T.due_on >= day
    moved += sum(
        _isolated(session, task, lambda t: _recount_due(session, t, day, region, working_days, today))
        for task in _locked(session, *answer)
    )
    return moved


def _isolated(session: Session, task: RectificationTask, recount: Callable[[RectificationTask], int]) -> int:
    """`recount(task)` in a savepoint. A task that cannot be recounted for a fixed cause (an
    AppError: its case's pinned item version unreadable, a count past the calendar's range)
    would fail the same way on every retry: it is left as it was and logged by id, and the others
    go on (the override itself is already committed). Anything else (a database error such as a
    lock timeout, SQLite's "database is locked" or a lost connection, the job's own timeout, a
    bug) propagates: the step fails and the job runs it again."""
    try:
        with session.begin_nested():
            return recount(task)
    except AppError as exc:
        log.error("a rectification task could not follow the calendar",
                  extra={"task_id": task.id, "error": type(exc).__name__})  # fmt: skip
        return 0


def _locked(session: Session, *where: ColumnElement[bool]) -> Iterator[RectificationTask]:
    """The tasks matching `where`, by id, `BATCH` at a time, each batch locked (FOR UPDATE) and
    committed once its tasks were recounted."""
    T, after = RectificationTask, ""
    while True:
        batch = list(
            session.scalars(
                select(T).where(*where, T.id > after).order_by(T.id).limit(BATCH).with_for_update()
            )
        )
        yield from batch
        session.commit()
        if len(batch) < BATCH:
            return
        after = batch[-1].id


def _region_under(session: Session, task: RectificationTask, region: str) -> str | None:
    """The task's region when the override's `region` applies to it."""
    task_region = region_of(session, task.evaluation_id)
    return task_region if region in calendar.region_chain(task_region) else None


def _recount_due(
    session: Session, task: RectificationTask, day: date, region: str, working_days: int, today: date
) -> int:
    """1 when the round's deadline moved (both ways)."""
    started = task.due_from or (local_date(task.created_at) if task.rounds == 1 else None)
    if started is None or started >= day:
        return 0
    task_region = _region_under(session, task, region)
    if task_region is None:
        return 0
    due = calendar.add_working_days(session, started, task.due_days or working_days, region=task_region)
    if due == task.due_on:
        return 0
    task.due_on = due
    if task.escalated_at is not None and due >= today:
        task.escalated_at = None  # not late after all: the day counted against it was closed
    return 1


def _recount(
    session: Session, task: RectificationTask, day: date, region: str, decide_days: int, remind_days: int
) -> int:
    """1 when the task's `decide_by` or reminder day moved."""
    started = task.decide_from or (local_date(task.responded_at) if task.responded_at else None)
    if started is None or started >= day or task.decide_by is None:
        return 0
    task_region = _region_under(session, task, region)
    if task_region is None:
        return 0
    counted = last_day_to_decide_from(session, task_region, started, task.decide_days or decide_days)
    decide_by = max(task.decide_by, counted)  # never earlier than the citizen was shown
    remind_on = task.remind_on
    if remind_days >= 1:
        remind_on = remind_day(session, task.evaluation_id, decide_by, started, remind_days)
    if (decide_by, remind_on) == (task.decide_by, task.remind_on):
        return 0
    task.decide_by, task.remind_on = decide_by, remind_on
    return 1
