"""The rectification of a 差评: the department responds, the citizen confirms or appeals.

A 差评 opens its task (`service.rate`), due in `RECTIFY_WORKING_DAYS` working days of the
case's region: the department responds (admin API), the citizen confirms or appeals (申诉复核),
which sends it back for another response. Overdue tasks are escalated by the sweeper.

A rectification ends. The national rules (国办发〔2019〕51号) give an appeal route but no number
of rounds: one review round after the first response (`APPEAL_ROUNDS`), then the citizen
confirms (a further appeal is 409 `evaluations.appeal_limit`; a complaint remains open to
them). Each response gives the citizen `DECIDE_WORKING_DAYS` working days of the case's region
to confirm or appeal it (`decide_by`, the last of them); afterwards a decision is 409
`evaluations.decision_closed` and the sweeper confirms the task by default (`closed_by`
"deadline", audited as `rectification.confirmed_by_default`, the citizen told). That silence
confirms is this province's configured rule, not a national one (the national rules set no
period): public figures count such tasks apart from those the citizen confirmed
(`bad_rectified_by_default`). A response given before periods were kept gets its period from
the day the sweeper first sees it, and the citizen is told the date.

A task belongs to every department handling one of the case's items, as pinned (a bundle's may
be several; `department_code` keeps the first item's, for display): operators tied to
departments list and answer only those tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from core import audit, clock, keyset
from core.crypto import Encryptor
from core.db import is_id, lock_one
from core.errors import Text
from core.text import has_visible_text
from domain.applications.deadlines import local_date
from domain.applications.models import Application, ApplicationNotice
from domain.applications.service import department_codes_of, spec_of
from domain.calendar import service as calendar
from domain.evaluations.errors import (
    AppealLimit,
    AwaitingDecision,
    BadCursor,
    BadRating,
    DecisionClosed,
    NotResponded,
    TaskClosed,
    TaskNotFound,
)
from domain.evaluations.models import (
    APPEALED,
    CLOSED_BY_CITIZEN,
    CLOSED_BY_DEADLINE,
    CONFIRMED,
    OPEN,
    RESPONDED,
    Evaluation,
    RectificationTask,
)
from domain.evaluations.service import (
    APPEAL_PURPOSE,
    MAX_TEXT,
    RECTIFY_WORKING_DAYS,
    appeal_reason_of,
    seal,
)
from domain.operators.scope import UNSCOPED, Scope, handled_by

APPEAL_ROUNDS = 1  # review rounds (申诉复核) after the first response
DECIDE_WORKING_DAYS = 5  # to confirm or appeal a response, counted from the day it was given
BATCH = 500  # tasks read at a time by the sweeper's step
MAX_BATCHES = 20  # of each kind (periods given, confirmations) a pass; the rest goes next pass

log = logging.getLogger("yiwang.evaluations")


def task_of(session: Session, evaluation_id: str) -> RectificationTask | None:
    return session.scalar(select(RectificationTask).where(RectificationTask.evaluation_id == evaluation_id))


def _locked_task(session: Session, where: ColumnElement[bool]) -> RectificationTask | None:
    """The task, locked for this transaction and read afresh (not a copy the session held).

    Every change of a task's state (respond, decide) goes through here, so of two at once the
    second waits for the first to commit and then judges the state the first left: two
    operators' answers, or a citizen's accept and appeal from two devices, never both succeed.
    """
    return lock_one(session, RectificationTask, where)


def respond(
    session: Session, *, task_id: str, response: str, operator_id: str, scope: Scope = UNSCOPED,
    decide_days: int = DECIDE_WORKING_DAYS,
) -> RectificationTask:  # fmt: skip
    """The department's answer (first, or after an appeal); the citizen has `decide_days`
    working days to confirm or appeal it. Commits. Another department's task is 404 to an
    operator tied to departments."""
    task = _locked_task(session, RectificationTask.id == task_id) if is_id(task_id) else None
    if task is None or not _in_scope(session, task, scope):
        raise TaskNotFound()
    if task.status not in (OPEN, APPEALED):  # one response per round, as a complaint's answer
        raise AwaitingDecision() if task.status == RESPONDED else TaskClosed()
    if not has_visible_text(response):  # the citizen must read it to confirm or appeal
        raise BadRating(fields={"response": [Text("Required", "请填写整改情况")]})
    task.response = response.strip()[: MAX_TEXT * 4]
    task.responded_by = operator_id
    task.responded_at = clock.now()
    task.status = RESPONDED
    task.decide_by = _decide_by(session, task.evaluation_id, task.responded_at, decide_days)
    _tell_responded(session, task)
    session.commit()
    return task


def _region_of(session: Session, evaluation_id: str) -> str:
    """The case's region, whose calendar counts the task's working days."""
    evaluation = session.get(Evaluation, evaluation_id)
    app = session.get(Application, evaluation.application_id) if evaluation else None
    return spec_of(session, app).region if app else "000000"


def _decide_by(session: Session, evaluation_id: str, counted_from: datetime, days: int) -> Any:
    """The last day to confirm or appeal: `days` working days of the case's region after the
    Beijing date of `counted_from`."""
    return calendar.add_working_days(
        session, local_date(counted_from), days, region=_region_of(session, evaluation_id)
    )


def can_decide(task: RectificationTask, today: date | None = None) -> bool:
    """Whether the citizen may still confirm or appeal the latest response: it awaits them and
    its `decide_by` (inclusive, Beijing date) has not passed, even if the sweeper has not yet
    confirmed it by default."""
    today = today or local_date(clock.now())
    return task.status == RESPONDED and (task.decide_by is None or today <= task.decide_by)


def can_appeal(task: RectificationTask, today: date | None = None) -> bool:
    """Whether the citizen may still appeal the latest response (the first one only, by its
    `decide_by`)."""
    return can_decide(task, today) and task.rounds <= APPEAL_ROUNDS


def _in_scope(session: Session, task: RectificationTask, scope: Scope) -> bool:
    """Whether the operator of `scope` may answer this task: its case is handled (for one of its
    items) by one of their departments."""
    if scope.allows_department(task.department_code):
        return True
    evaluation = session.get(Evaluation, task.evaluation_id)
    app = session.get(Application, evaluation.application_id) if evaluation else None
    return app is not None and scope.allows_any_department(department_codes_of(session, app))


def _tell_responded(session: Session, task: RectificationTask, *, suffix: str = "") -> bool:
    """The citizen hears that the department answered (each round once): they are to read the
    answer and confirm or appeal it by `decide_by`, which they would not know to do otherwise.
    `suffix` tells again a response first told before periods were kept (its date then)."""
    app = _application_of(session, task)
    if app is None:
        return False
    session.add(ApplicationNotice(
        dedupe_key=f"{app.id}:rectification:{task.id}:{task.rounds}{suffix}", account_id=app.account_id,
        application_id=app.id, event_type="rectification_responded",
        created_at=clock.now() if suffix else task.responded_at,
        params={"case_number": app.case_number, "service_name": app.service_name,
                "decide_by": task.decide_by.isoformat() if task.decide_by else None},
    ))  # fmt: skip
    return True


def _tell_confirmed_by_default(session: Session, task: RectificationTask, now: datetime) -> None:
    """The citizen hears that their silence confirmed the rectification (once per task)."""
    app = _application_of(session, task)
    if app is None:
        return
    session.add(ApplicationNotice(
        dedupe_key=f"{app.id}:rectification:{task.id}:by-default", account_id=app.account_id,
        application_id=app.id, event_type=CONFIRMED_BY_DEFAULT_EVENT, created_at=now,
        params={"case_number": app.case_number, "service_name": app.service_name,
                "decide_by": task.decide_by.isoformat() if task.decide_by else None},
    ))  # fmt: skip


def _application_of(session: Session, task: RectificationTask) -> Application | None:
    evaluation = session.get(Evaluation, task.evaluation_id)
    return session.get(Application, evaluation.application_id) if evaluation else None


CONFIRMED_BY_DEFAULT_EVENT = "rectification_deemed_confirmed"


def decide(
    session: Session, encryptor: Encryptor, *, account_id: str, evaluation_id: str, accept: bool,
    reason: str | None, working_days: int = RECTIFY_WORKING_DAYS,
) -> RectificationTask:  # fmt: skip
    """The citizen confirms the rectification or appeals it (申诉复核) by `decide_by`; one appeal
    only (`APPEAL_ROUNDS`). Commits; nothing is written when refused."""
    task = _locked_task(session, RectificationTask.evaluation_id == evaluation_id)
    if task is None or task.account_id != account_id:
        raise TaskNotFound()
    if task.closed_by == CLOSED_BY_DEADLINE:
        raise DecisionClosed(decide_by=task.decide_by.isoformat() if task.decide_by else "")
    if task.status != RESPONDED:
        raise TaskClosed() if task.status == CONFIRMED else NotResponded()
    now = clock.now()
    if task.decide_by is not None and local_date(now) > task.decide_by:
        raise DecisionClosed(decide_by=task.decide_by.isoformat())  # the sweeper closes it
    if accept:
        task.status, task.closed_at, task.closed_by = CONFIRMED, now, CLOSED_BY_CITIZEN
    else:
        if not can_appeal(task):
            raise AppealLimit()
        if not has_visible_text(reason or ""):
            raise BadRating(fields={"reason": [Text("Say why you appeal", "请说明申诉理由")]})
        task.status, task.rounds = APPEALED, task.rounds + 1
        task.appeal_reason_enc = seal(encryptor, reason, APPEAL_PURPOSE)
        task.due_on = calendar.add_working_days(
            session, local_date(now), working_days, region=_region_of(session, task.evaluation_id)
        )
        task.escalated_at, task.decide_by = None, None
    session.commit()
    return task


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


def _decide_by_from(session: Session, seen: Any, now: datetime, days: int) -> date | None:
    """The period of a response first seen now; None (logged) when it cannot be counted."""
    try:
        due = _decide_by(session, seen.evaluation_id, now, days)
        session.rollback()
        return due  # type: ignore[no-any-return]
    except Exception as exc:
        session.rollback()
        _failed(seen.id, "period", exc)
        return None


def _each(session: Session, stage: str, task_id: str, work: Callable[[RectificationTask], bool]) -> int:
    """`work(task)` on the task locked and read afresh, committed; 1 when it changed the task.
    A failure is rolled back and logged by the task's id (no personal data)."""
    try:
        task = _locked_task(session, RectificationTask.id == task_id)
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
    _tell_responded(session, task, suffix=":decide-by")
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


def tasks(
    session: Session, *, status: str | None = None, overdue: bool = False, cursor: str | None = None,
    limit: int = 50, scope: Scope = UNSCOPED,
) -> tuple[list[RectificationTask], str | None]:  # fmt: skip
    """(tasks, earliest due first, then by creation and id; the next page's cursor or None).
    The cursor is the last row's (due_on, created_at, id); 400 `evaluations.bad_cursor` for a
    malformed one. An operator tied to departments gets only those departments' tasks: of a
    case one of whose items they handle (the first item's department is on the row; the others
    are read from the case's pinned items)."""
    T, E, A = RectificationTask, Evaluation, Application
    stmt = select(T)
    if scope.departments is not None:
        departments = sorted(scope.departments)
        stmt = stmt.where(
            or_(
                T.department_code.in_(departments),
                exists().where(
                    E.id == T.evaluation_id,
                    A.id == E.application_id,
                    handled_by(A.items, departments),
                ),
            )
        )
    if status:
        stmt = stmt.where(T.status == status)
    if overdue:
        stmt = stmt.where(T.escalated_at.is_not(None), T.status.in_((OPEN, APPEALED)))
    if cursor:
        due, at, last_id = _task_position(cursor)
        stmt = stmt.where(
            or_(
                T.due_on > due,
                and_(T.due_on == due, or_(T.created_at > at, and_(T.created_at == at, T.id > last_id))),
            )
        )
    rows = list(session.scalars(stmt.order_by(T.due_on, T.created_at, T.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], keyset.encode(last.due_on.isoformat(), last.created_at.isoformat(), last.id)


def _task_position(cursor: str) -> tuple[Any, Any, str]:
    try:
        due, at, last_id = keyset.decode(cursor, 3)
        return keyset.day(due), keyset.moment(at), keyset.row_id(last_id)
    except ValueError:
        raise BadCursor() from None


def tasks_for_operator(
    session: Session, encryptor: Encryptor, *, operator_id: str, request_id: str | None,
    status: str | None = None, overdue: bool = False, cursor: str | None = None, limit: int = 50,
    scope: Scope = UNSCOPED,
) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """A page of `tasks` as an operator sees them (only their departments' when they are tied
    to departments), each citizen's appeal reason in clear; every task whose reason is shown is
    an audited read (`evaluation.appeal_read`)."""
    rows, next_cursor = tasks(
        session, status=status, overdue=overdue, cursor=cursor, limit=limit, scope=scope
    )
    shown = []
    for task in rows:
        view = {c: getattr(task, c) for c in _TASK_FIELDS}
        view["appeal_reason"] = appeal_reason_of(task, encryptor)
        if view["appeal_reason"] is not None:
            audit.record(
                session, actor_type="operator", actor_id=operator_id, action="evaluation.appeal_read",
                target_type="rectification_task", target_id=task.id, request_id=request_id, details={},
            )  # fmt: skip
        shown.append(view)
    session.commit()
    return shown, next_cursor


_TASK_FIELDS = (
    "id",
    "evaluation_id",
    "department",
    "department_code",
    "status",
    "due_on",
    "response",
    "rounds",
    "decide_by",
    "closed_by",
    "escalated_at",
    "created_at",
)
