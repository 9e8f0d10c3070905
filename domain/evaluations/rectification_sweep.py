"""The sweeper's step of rectification (see `rectification` for the rules it keeps).

Each pass: a response without a period (given before periods were kept) gets one, its citizen
told the date; a response still awaiting the citizen whose reminder day (`remind_on`,
`REMIND_WORKING_DAYS_BEFORE` working days of the case's region before its `decide_by`, kept with
it) has come gets them one reminder (`remind_undecided`); a response the citizen neither
confirmed nor appealed by `decide_by` is confirmed by default (`close_undecided`); open or
appealed tasks past their due date are escalated and those due soon reminded to their
departments (`escalate_overdue`, `due_for_reminder`).

The citizen's reminder (`rectification_decide_reminder`, "您对…评价的整改结果，确认将于…（含当日）截止，
逾期未确认或申诉将视为确认") is sent once a response round (`decide_reminded_round`; a new response
after an appeal gets its own period and its own reminder), on its reminder day or, when the
sweeper missed it, any later day of the period; never once the citizen decided or the task
closed, and not once the period is over: then the confirmation by default is what they are told.
The last round's (`final`) asks them to confirm and names a complaint, as no appeal is left.
Many of the citizens are elderly and would otherwise miss a silent five-day window.

Each kind of work reads only the tasks it acts on, and acting takes a task out of what it reads
(a period given, a reminder day counted, a round reminded, a task confirmed), so what a pass's
`MAX_BATCHES` leave really goes next pass: only a task that fails stays to be read again. The
reminders read by `remind_on`, not every awaiting task's calendar: a pass costs a few statements
plus those of the tasks it reminds. A response given before `remind_on` was kept gets it counted
the first time the sweeper sees it (once each, in the same bounded batches).
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
from domain.calendar import service as calendar
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
    REMIND_WORKING_DAYS_BEFORE,
    application_of,
    is_final,
    last_day_to_decide,
    locked_task,
    remind_day,
    tell_responded,
)

BATCH = 500  # tasks read at a time by the sweeper's step
MAX_BATCHES = 20  # of each kind (periods, reminder days, reminders, confirmations) a pass
CONFIRMED_BY_DEFAULT_EVENT = "rectification_deemed_confirmed"
REMINDER_EVENT = "rectification_decide_reminder"

log = logging.getLogger("yiwang.evaluations")


def close_undecided(
    session: Session, now: datetime, *, decide_days: int = DECIDE_WORKING_DAYS,
    remind_days: int = REMIND_WORKING_DAYS_BEFORE,
) -> int:  # fmt: skip
    """Responses the citizen neither confirmed nor appealed by `decide_by` are confirmed by
    default (`closed_by` "deadline"), each audited and its citizen told; returns how many.

    A response without `decide_by` (given before periods were kept) first gets its period,
    counted from this pass's Beijing date, not from when it was given (the citizen was never
    told of one), with its reminder day (`remind_days` before it), and the citizen is told the
    date (once). Tasks are read `BATCH` at a time, at most `MAX_BATCHES` batches of each kind a
    pass; each is then locked and read afresh in its own short transaction, so a citizen's
    decision or a new round at the same moment wins and is never overwritten. A task that fails
    is rolled back and logged (its id only) and the others go on; a batch that cannot be read
    ends the step, still reporting the count. Commits."""
    T = RectificationTask
    today = local_date(now)
    pending = T.status == RESPONDED, T.decide_by.is_(None)
    closed = 0
    try:
        for seen in _batches(session, *pending):
            if _period_from(session, seen, now, decide_days, remind_days) is not None:  # it can be counted
                give = partial(
                    _give_period, session, seen=seen, now=now, days=decide_days, remind_days=remind_days
                )
                _each(session, "period", seen.id, give)
        for seen in _batches(session, T.status == RESPONDED, T.decide_by < today):
            closed += _each(session, "default", seen.id, partial(_confirm_by_default, session, now=now))
    except Exception as exc:  # reading a batch failed (the database away): what was done is reported
        session.rollback()
        log.error("the rectification step stopped", extra={"confirmed": closed, "error": type(exc).__name__})
    return closed


def remind_undecided(
    session: Session, now: datetime, *, days_before: int = REMIND_WORKING_DAYS_BEFORE
) -> int:
    """Responses awaiting the citizen whose reminder day (`remind_on`) has come and whose
    `decide_by` has not passed get their citizen's one reminder of the round; returns how many
    were sent. Responses given before reminder days were kept first get theirs (`days_before`
    working days of the case's region before `decide_by`). In bounded batches, each task locked
    and read afresh in its own transaction, one failing task logged and the others going on, as
    `close_undecided`. Commits."""
    if days_before < 1:
        return 0
    T = RectificationTask
    today = local_date(now)
    not_reminded = or_(T.decide_reminded_round.is_(None), T.decide_reminded_round < T.rounds)
    uncounted = T.status == RESPONDED, T.decide_by >= today, T.remind_on.is_(None), not_reminded
    due = T.status == RESPONDED, T.remind_on <= today, T.decide_by >= today, not_reminded
    reminded = 0
    try:
        for seen in _batches(session, *uncounted):
            day = _remind_day_of(session, seen, days_before)
            if day is not None:
                _each(session, "reminder day", seen.id, partial(_keep_remind_day, seen=seen, day=day))
        for seen in _batches(session, *due):
            remind = partial(_remind, session, seen=seen, today=today, now=now)
            reminded += _each(session, "reminder", seen.id, remind)
    except Exception as exc:  # reading a batch failed (the database away): what was done is reported
        session.rollback()
        log.error(
            "the rectification reminders stopped", extra={"reminded": reminded, "error": type(exc).__name__}
        )
    return reminded


def _remind(
    session: Session, task: RectificationTask, *, seen: Any, today: date, now: datetime
) -> int | None:
    """The citizen's reminder, when the response read still awaits them, its reminder day come
    and its period not over, and this round not yet reminded: 1 when a notice was written.

    The round is marked reminded (0, not counted as sent) also when there is nothing to write:
    the task's case is gone (no one to tell about it), or the notice is already on file (a
    round forgotten by a migration's downgrade and upgrade): the task then leaves the reminders'
    set rather than being read, or failing, again each pass."""
    if task.status != RESPONDED or task.rounds != seen.rounds or task.decide_reminded_round == task.rounds:
        return None
    if task.decide_by is None or task.remind_on is None or not task.remind_on <= today <= task.decide_by:
        return None
    task.decide_reminded_round = task.rounds
    return 1 if _tell_decide_soon(session, task, now) else 0


def _remind_day_of(session: Session, seen: Any, days_before: int) -> date | None:
    """The reminder day of a response given before they were kept (None, logged, when it
    cannot be counted)."""
    try:
        given_on = local_date(seen.responded_at) if seen.responded_at else seen.decide_by
        day = remind_day(session, seen.evaluation_id, seen.decide_by, given_on, days_before)
        session.rollback()
        return day
    except Exception as exc:
        session.rollback()
        _failed(seen.id, "reminder day", exc)
        return None


def _keep_remind_day(task: RectificationTask, *, seen: Any, day: date) -> int | None:
    """`day`, for the period it was counted from (not a new round's since)."""
    if task.status != RESPONDED or task.rounds != seen.rounds or task.decide_by != seen.decide_by:
        return None
    if task.remind_on is not None:
        return None
    task.remind_on = day
    return 0


def _batches(session: Session, *where: ColumnElement[bool]) -> Iterator[Any]:
    """The tasks matching `where`, by id, `BATCH` at a time, at most `MAX_BATCHES` batches; each
    batch's reads end their transaction before its tasks are written."""
    T, after = RectificationTask, ""
    for _ in range(MAX_BATCHES):
        rows = session.execute(
            select(T.id, T.evaluation_id, T.responded_at, T.rounds, T.decide_by).where(*where, T.id > after)
            .order_by(T.id).limit(BATCH)
        ).all()  # fmt: skip
        session.rollback()
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _period_from(
    session: Session, seen: Any, now: datetime, days: int, remind_days: int
) -> tuple[date, date | None] | None:
    """(`days` working days of the task's region after `now`'s Beijing date, its reminder day):
    the period of a response first seen now; None (logged) when it cannot be counted."""
    try:
        due = last_day_to_decide(session, seen.evaluation_id, now, days)
        remind_on = remind_day(session, seen.evaluation_id, due, local_date(now), remind_days)
        session.rollback()
        return due, remind_on
    except Exception as exc:
        session.rollback()
        _failed(seen.id, "period", exc)
        return None


def _each(session: Session, stage: str, task_id: str, work: Callable[[RectificationTask], int | None]) -> int:
    """`work(task)` on the task locked and read afresh: None (nothing to change) is rolled back;
    a count (0 or 1) is committed and returned. A failure is rolled back and logged by the
    task's id (no personal data)."""
    try:
        task = locked_task(session, RectificationTask.id == task_id)
        done = work(task) if task is not None else None
        if done is None:
            session.rollback()
            return 0
        session.commit()
        return done
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


def _give_period(
    session: Session, task: RectificationTask, *, seen: Any, now: datetime, days: int, remind_days: int
) -> int | None:
    """A response still without a period, as it was read (not a new round since), gets `days`
    working days from `now`'s Beijing date and its reminder day, counted (again) under the
    calendar's lock: an override entered since `_period_from` counted is counted too, as the
    follow-up (`rectification_calendar`) does not see a task without a period."""
    if task.status != RESPONDED or task.decide_by is not None or task.rounds != seen.rounds:
        return None
    if task.responded_at != seen.responded_at:
        return None
    calendar.hold(session)
    task.decide_from, task.decide_days = local_date(now), days
    task.decide_by = last_day_to_decide(session, task.evaluation_id, now, days)
    task.remind_on = remind_day(session, task.evaluation_id, task.decide_by, task.decide_from, remind_days)
    tell_responded(session, task, suffix=":decide-by")
    return 1


def _confirm_by_default(session: Session, task: RectificationTask, *, now: datetime) -> int | None:
    if task.status != RESPONDED or task.decide_by is None or task.decide_by >= local_date(now):
        return None
    task.status, task.closed_at, task.closed_by = CONFIRMED, now, CLOSED_BY_DEADLINE
    audit.record(
        session, actor_type="system", actor_id=None, action="rectification.confirmed_by_default",
        target_type="rectification_task", target_id=task.id,
        details={"decide_by": task.decide_by.isoformat(), "rounds": task.rounds},
    )  # fmt: skip
    _tell_confirmed_by_default(session, task, now)
    return 1


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


def _tell_decide_soon(session: Session, task: RectificationTask, now: datetime) -> bool:
    """The citizen hears by when they are to confirm or appeal (only confirm, the last round:
    `final`), and that silence confirms (once per round); False when nothing was written: the
    case is gone, or this round's notice is already on file."""
    app = application_of(session, task)
    if app is None:
        return False
    key = f"{app.id}:rectification:{task.id}:{task.rounds}:remind"
    if session.scalar(select(ApplicationNotice.id).where(ApplicationNotice.dedupe_key == key)) is not None:
        return False
    session.add(ApplicationNotice(
        dedupe_key=key, account_id=app.account_id,
        application_id=app.id, event_type=REMINDER_EVENT, created_at=now,
        params={"case_number": app.case_number, "service_name": app.service_name,
                "decide_by": task.decide_by.isoformat() if task.decide_by else None,
                "final": is_final(task)},
    ))  # fmt: skip
    return True


ESCALATE_BATCH = 1000


def escalate_overdue(session: Session, now: datetime) -> int:
    """Open or appealed tasks past their due date are marked escalated (once per round). The
    tasks are locked in id order first, as a calendar override's recount locks them
    (domain/evaluations/rectification_calendar.py): one UPDATE locks in the order it scans."""
    T = RectificationTask
    late = T.status.in_((OPEN, APPEALED)), T.due_on < local_date(now), T.escalated_at.is_(None)
    # At most ESCALATE_BATCH a pass (the rest next pass): a bounded lock set and IN list.
    ids = list(
        session.scalars(select(T.id).where(*late).order_by(T.id).limit(ESCALATE_BATCH).with_for_update())
    )
    if not ids:
        return 0
    result = session.execute(
        update(T).where(T.id.in_(ids), *late).values(escalated_at=now),
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
