"""The sweeper's step of rectification (see `rectification` for the rules it keeps).

Each pass: a response without a period (given before periods were kept) gets one, its citizen
told the date; a response still awaiting the citizen `REMIND_WORKING_DAYS_BEFORE` working days
(of the case's region) before its `decide_by` gets them one reminder (`remind_undecided`); a
response the citizen neither confirmed nor appealed by `decide_by` is confirmed by default
(`close_undecided`); open or appealed tasks past their due date are escalated and those due soon
reminded to their departments (`escalate_overdue`, `due_for_reminder`).

The citizen's reminder (`rectification_decide_reminder`, "您对整改结果的确认将于…截止，逾期未确认
或申诉将视为认可") is sent once a response round (`decide_reminded_round`; a new response after
an appeal gets its own period and its own reminder), on that working day or, when the sweeper
missed it, any later day of the period; never once the citizen decided or the task closed, and
not once the period is over: then the confirmation by default is what they are told. Many of the
citizens are elderly and would otherwise miss a silent five-day window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from core import audit
from domain.applications.deadlines import local_date
from domain.applications.models import ApplicationNotice
from domain.evaluations.models import (
    APPEALED,
    CLOSED_BY_DEADLINE,
    CONFIRMED,
    OPEN,
    RESPONDED,
    RectificationTask,
)
from domain.evaluations.rectification import (
    DECIDE_WORKING_DAYS,
    application_of,
    last_day_to_decide,
    locked_task,
    tell_responded,
)

REMIND_WORKING_DAYS_BEFORE = 1  # the citizen's reminder, before `decide_by` (0: none)
BATCH = 500  # tasks read at a time by the sweeper's step
MAX_BATCHES = 20  # of each kind (periods, reminders, confirmations) a pass; the rest goes next pass
CONFIRMED_BY_DEFAULT_EVENT = "rectification_deemed_confirmed"
REMINDER_EVENT = "rectification_decide_reminder"
# Calendar days that surely hold n working days: 7 n plus the longest break (春节 with its
# weekends). Only narrows what is read; each task's reminder day is counted on its calendar.
_SURELY_WORKING = (7, 14)

log = logging.getLogger("yiwang.evaluations")


def close_undecided(session: Session, now: datetime, *, decide_days: int = DECIDE_WORKING_DAYS) -> int:
    """Responses the citizen neither confirmed nor appealed by `decide_by` are confirmed by
    default (`closed_by` "deadline"), each audited and its citizen told; returns how many.

    A response without `decide_by` (given before periods were kept) first gets its period,
    counted from this pass's Beijing date, not from when it was given (the citizen was never
    told of one), and the citizen is told the date (once). Tasks are read `BATCH` at a time, at
    most `MAX_BATCHES` batches of each kind a pass; each is then locked and read afresh in its
    own short transaction, so a citizen's decision or a new round at the same moment wins and is
    never overwritten. A task that fails is rolled back and logged (its id only) and the others
    go on; a batch that cannot be read ends the step, still reporting the count. Commits."""
    T = RectificationTask
    today = local_date(now)
    pending = T.status == RESPONDED, T.decide_by.is_(None)
    closed = 0
    try:
        for seen in _batches(session, *pending):
            due = _decide_by_from(session, seen, now, decide_days)
            if due is not None:
                _each(session, "period", seen.id, partial(_give_period, session, seen=seen, due=due))
        for seen in _batches(session, T.status == RESPONDED, T.decide_by < today):
            closed += _each(session, "default", seen.id, partial(_confirm_by_default, session, now=now))
    except Exception as exc:  # reading a batch failed (the database away): what was done is reported
        session.rollback()
        log.error("the rectification step stopped", extra={"confirmed": closed, "error": type(exc).__name__})
    return closed


def remind_undecided(
    session: Session, now: datetime, *, days_before: int = REMIND_WORKING_DAYS_BEFORE
) -> int:
    """Responses awaiting the citizen whose `decide_by` is at most `days_before` working days of
    the case's region after this pass's Beijing date (and not past) get their citizen's one
    reminder of the round; returns how many were sent. In bounded batches, each task locked and
    read afresh in its own transaction, one failing task logged and the others going on, as
    `close_undecided`. Commits."""
    if days_before < 1:
        return 0
    T = RectificationTask
    today = local_date(now)
    per_day, longest_break = _SURELY_WORKING
    horizon = today + timedelta(days=per_day * days_before + longest_break)
    awaiting = (
        T.status == RESPONDED, T.decide_by >= today, T.decide_by <= horizon,
        or_(T.decide_reminded_round.is_(None), T.decide_reminded_round < T.rounds),
    )  # fmt: skip
    reminded = 0
    try:
        for seen in _batches(session, *awaiting):
            # The last day whose reminder is due today: `days_before` working days from today.
            latest = _decide_by_from(session, seen, now, days_before, stage="reminder")
            if latest is not None:
                remind = partial(_remind, session, seen=seen, latest=latest, today=today, now=now)
                reminded += _each(session, "reminder", seen.id, remind)
    except Exception as exc:  # reading a batch failed (the database away): what was done is reported
        session.rollback()
        log.error(
            "the rectification reminders stopped", extra={"reminded": reminded, "error": type(exc).__name__}
        )
    return reminded


def _remind(
    session: Session, task: RectificationTask, *, seen: Any, latest: date, today: date, now: datetime
) -> bool:
    """The citizen's reminder, when the response read still awaits them, within its period and
    its reminder day come, and this round not yet reminded."""
    if task.status != RESPONDED or task.rounds != seen.rounds or task.decide_reminded_round == task.rounds:
        return False
    if task.decide_by is None or not today <= task.decide_by <= latest:
        return False
    task.decide_reminded_round = task.rounds
    _tell_decide_soon(session, task, now)
    return True


def _batches(session: Session, *where: ColumnElement[bool]) -> Iterator[Any]:
    """The tasks matching `where`, by id, `BATCH` at a time, at most `MAX_BATCHES` batches; each
    batch's reads end their transaction before its tasks are written."""
    T, after = RectificationTask, ""
    for _ in range(MAX_BATCHES):
        rows = session.execute(
            select(T.id, T.evaluation_id, T.responded_at, T.rounds).where(*where, T.id > after)
            .order_by(T.id).limit(BATCH)
        ).all()  # fmt: skip
        session.rollback()
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _decide_by_from(
    session: Session, seen: Any, now: datetime, days: int, *, stage: str = "period"
) -> date | None:
    """`days` working days of the task's region after `now`'s Beijing date (the period of a
    response first seen now); None (logged) when it cannot be counted."""
    try:
        due = last_day_to_decide(session, seen.evaluation_id, now, days)
        session.rollback()
        return due  # type: ignore[no-any-return]
    except Exception as exc:
        session.rollback()
        _failed(seen.id, stage, exc)
        return None


def _each(session: Session, stage: str, task_id: str, work: Callable[[RectificationTask], bool]) -> int:
    """`work(task)` on the task locked and read afresh, committed; 1 when it changed the task.
    A failure is rolled back and logged by the task's id (no personal data)."""
    try:
        task = locked_task(session, RectificationTask.id == task_id)
        if task is None or not work(task):
            session.rollback()
            return 0
        session.commit()
        return 1
    except Exception as exc:
        session.rollback()
        _failed(task_id, stage, exc)
        return 0


def _failed(task_id: str, stage: str, exc: Exception) -> None:
    """Logged by the task's id and the error's type only: a database error's text can carry the
    row's values (a citizen's case number, the notice's parameters)."""
    log.error(
        "a rectification task failed", extra={"task_id": task_id, "stage": stage, "error": type(exc).__name__}
    )


def _give_period(session: Session, task: RectificationTask, *, seen: Any, due: date) -> bool:
    """A response still without a period, as it was read (not a new round since), gets `due`."""
    if task.status != RESPONDED or task.decide_by is not None or task.rounds != seen.rounds:
        return False
    if task.responded_at != seen.responded_at:
        return False
    task.decide_by = due
    tell_responded(session, task, suffix=":decide-by")
    return True


def _confirm_by_default(session: Session, task: RectificationTask, *, now: datetime) -> bool:
    if task.status != RESPONDED or task.decide_by is None or task.decide_by >= local_date(now):
        return False
    task.status, task.closed_at, task.closed_by = CONFIRMED, now, CLOSED_BY_DEADLINE
    audit.record(
        session, actor_type="system", actor_id=None, action="rectification.confirmed_by_default",
        target_type="rectification_task", target_id=task.id,
        details={"decide_by": task.decide_by.isoformat(), "rounds": task.rounds},
    )  # fmt: skip
    _tell_confirmed_by_default(session, task, now)
    return True


def _tell_confirmed_by_default(session: Session, task: RectificationTask, now: datetime) -> None:
    """The citizen hears that their silence confirmed the rectification (once per task)."""
    app = application_of(session, task)
    if app is None:
        return
    session.add(ApplicationNotice(
        dedupe_key=f"{app.id}:rectification:{task.id}:by-default", account_id=app.account_id,
        application_id=app.id, event_type=CONFIRMED_BY_DEFAULT_EVENT, created_at=now,
        params={"case_number": app.case_number, "service_name": app.service_name,
                "decide_by": task.decide_by.isoformat() if task.decide_by else None},
    ))  # fmt: skip


def _tell_decide_soon(session: Session, task: RectificationTask, now: datetime) -> None:
    """The citizen hears by when they are to confirm or appeal, and that silence confirms (once
    per round)."""
    app = application_of(session, task)
    if app is None:
        return
    session.add(ApplicationNotice(
        dedupe_key=f"{app.id}:rectification:{task.id}:{task.rounds}:remind", account_id=app.account_id,
        application_id=app.id, event_type=REMINDER_EVENT, created_at=now,
        params={"case_number": app.case_number, "service_name": app.service_name,
                "decide_by": task.decide_by.isoformat() if task.decide_by else None},
    ))  # fmt: skip


def escalate_overdue(session: Session, now: datetime) -> int:
    """Open or appealed tasks past their due date are marked escalated (once per round)."""
    T = RectificationTask
    result = session.execute(
        update(T).where(T.status.in_((OPEN, APPEALED)), T.due_on < local_date(now), T.escalated_at.is_(None))
        .values(escalated_at=now),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    return int(result.rowcount or 0)


def due_for_reminder(session: Session, now: datetime) -> list[RectificationTask]:
    """Open or appealed tasks due today or tomorrow not yet reminded today; marks them (flushed)."""
    T = RectificationTask
    today = local_date(now)
    rows = list(
        session.scalars(
            select(T).where(
                T.status.in_((OPEN, APPEALED)), T.due_on <= today + timedelta(days=1), T.due_on >= today,
                (T.reminded_on.is_(None)) | (T.reminded_on < today),
            )
        )
    )  # fmt: skip
    for task in rows:
        task.reminded_on = today
    session.flush()
    return rows
