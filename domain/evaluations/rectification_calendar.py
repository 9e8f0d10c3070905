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

Lock ordering, as for cases: every count of a period takes the calendar's lock shared
(`calendar.hold`) in the transaction that writes it, and an override's write takes it
exclusively and commits before this runs. A response given while an override is entered either
counts on the new calendar or is committed, and so seen here; recounting it again is harmless
(the same count).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.applications.deadlines import local_date
from domain.calendar import service as calendar
from domain.evaluations.models import RESPONDED, RectificationTask
from domain.evaluations.rectification import (
    DECIDE_WORKING_DAYS,
    REMIND_WORKING_DAYS_BEFORE,
    last_day_to_decide_from,
    region_of,
    remind_day,
)

BATCH = 500


def follow(
    session: Session, *, day: date, region: str, decide_days: int = DECIDE_WORKING_DAYS,
    remind_days: int = REMIND_WORKING_DAYS_BEFORE,
) -> int:  # fmt: skip
    """Recount the periods awaiting the citizen's decision that span `day` (after the day they
    started, up to their `decide_by`) in a region under `region` (000000: every region), and
    their reminder days (`remind_days` working days before; 0: left as they are); commits each
    batch. `decide_days` counts a period given before its own number was kept. How many moved."""
    T = RectificationTask
    moved, after = 0, ""
    while True:
        batch = list(
            session.scalars(
                select(T)
                .where(T.status == RESPONDED, T.decide_by.is_not(None), T.decide_by >= day, T.id > after)
                .order_by(T.id)
                .limit(BATCH)
                .with_for_update()
            )
        )
        for task in batch:
            moved += _recount(session, task, day=day, region=region, decide_days=decide_days,
                              remind_days=remind_days)  # fmt: skip
        session.commit()
        if len(batch) < BATCH:
            return moved
        after = batch[-1].id


def _recount(
    session: Session, task: RectificationTask, *, day: date, region: str, decide_days: int, remind_days: int
) -> int:
    """1 when the task's `decide_by` or reminder day moved."""
    started = task.decide_from or (local_date(task.responded_at) if task.responded_at else None)
    if started is None or started >= day or task.decide_by is None:
        return 0
    task_region = region_of(session, task.evaluation_id)
    if region not in calendar.region_chain(task_region):
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
