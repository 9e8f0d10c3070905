"""The rectification of a 差评: the department responds, the citizen confirms or appeals.

A 差评 opens its task (`service.rate`), due in `RECTIFY_WORKING_DAYS` working days of the
case's region: the department responds (admin API), the citizen confirms or appeals (申诉复核),
which sends it back for another response. This module holds those actions and the queries; the
sweeper's step (periods, reminders, confirmation by default, escalation) is in
`rectification_sweep`.

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
the day the sweeper first sees it, and the citizen is told the date. Whenever `decide_by` is set
so is `remind_on`, the working day (`RECTIFY_REMIND_WORKING_DAYS_BEFORE` of them) before it, never
before the day the period starts (then that day itself); from it the sweeper reminds a citizen
who has not yet decided, once per round (`decide_reminded_round`), never after the period. The
notices of the last round (after the appeal, `final`) ask the citizen to confirm and name a
complaint instead of an appeal they could no longer make. Both days follow a calendar override
entered later (`rectification_calendar`: never earlier than the citizen was shown).

A task belongs to every department handling one of the case's items, as pinned (a bundle's may
be several; `department_code` keeps the first item's, for display): operators tied to
departments list and answer only those tasks.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from core import audit, clock, keyset
from core.crypto import Encryptor
from core.db import is_id, lock_one
from core.errors import Text
from core.text import has_visible_text
from domain.accounts import open_guard
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
REMIND_WORKING_DAYS_BEFORE = 1  # the citizen's reminder, before `decide_by` (0: none)


def task_of(session: Session, evaluation_id: str) -> RectificationTask | None:
    return session.scalar(select(RectificationTask).where(RectificationTask.evaluation_id == evaluation_id))


def locked_task(session: Session, where: ColumnElement[bool]) -> RectificationTask | None:
    """The task, locked for this transaction and read afresh (not a copy the session held).

    Every change of a task's state (respond, decide, the sweeper's) goes through here, so of two at once the
    second waits for the first to commit and then judges the state the first left: two
    operators' answers, or a citizen's accept and appeal from two devices, never both succeed.
    """
    return lock_one(session, RectificationTask, where)


def respond(
    session: Session, *, task_id: str, response: str, operator_id: str, scope: Scope = UNSCOPED,
    decide_days: int = DECIDE_WORKING_DAYS, remind_days: int = REMIND_WORKING_DAYS_BEFORE,
) -> RectificationTask:  # fmt: skip
    """The department's answer (first, or after an appeal); the citizen has `decide_days`
    working days to confirm or appeal it and is reminded `remind_days` working days before the
    last (`remind_on`). Commits. Another department's task is 404 to an operator tied to
    departments."""
    task = locked_task(session, RectificationTask.id == task_id) if is_id(task_id) else None
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
    calendar.hold(session)  # counted on the calendar as committed: rectification_calendar
    task.decide_from, task.decide_days = local_date(task.responded_at), decide_days
    task.decide_by = last_day_to_decide(session, task.evaluation_id, task.responded_at, decide_days)
    task.remind_on = remind_day(session, task.evaluation_id, task.decide_by, task.decide_from, remind_days)
    tell_responded(session, task)
    session.commit()
    return task


def region_of(session: Session, evaluation_id: str) -> str:
    """The case's region, whose calendar counts the task's working days."""
    evaluation = session.get(Evaluation, evaluation_id)
    app = session.get(Application, evaluation.application_id) if evaluation else None
    return spec_of(session, app).region if app else "000000"


def last_day_to_decide(session: Session, evaluation_id: str, counted_from: datetime, days: int) -> Any:
    """The last day to confirm or appeal: `days` working days of the case's region after the
    Beijing date of `counted_from`."""
    return last_day_to_decide_from(session, region_of(session, evaluation_id), local_date(counted_from), days)


def last_day_to_decide_from(session: Session, region: str, started: date, days: int) -> date:
    """`days` working days of `region` after `started` (not itself counted)."""
    return calendar.add_working_days(session, started, days, region=region)


def remind_day(
    session: Session, evaluation_id: str, decide_by: date, given_on: date, days_before: int
) -> date | None:
    """The day to remind the citizen from: `days_before` working days of the case's region
    before `decide_by`, but not before `given_on` (the day the period started: a period too short
    for it is reminded at once rather than not at all); None when no reminder is kept
    (`days_before` 0)."""
    if days_before < 1:
        return None
    region = region_of(session, evaluation_id)
    return max(calendar.working_days_before(session, decide_by, days_before, region=region), given_on)


def is_final(task: RectificationTask) -> bool:
    """Whether the latest response is the last round's: no appeal after it (`APPEAL_ROUNDS`)."""
    return task.rounds > APPEAL_ROUNDS


def can_decide(task: RectificationTask, today: date | None = None) -> bool:
    """Whether the citizen may still confirm or appeal the latest response: it awaits them and
    its `decide_by` (inclusive, Beijing date) has not passed, even if the sweeper has not yet
    confirmed it by default."""
    today = today or local_date(clock.now())
    return task.status == RESPONDED and (task.decide_by is None or today <= task.decide_by)


def can_appeal(task: RectificationTask, today: date | None = None) -> bool:
    """Whether the citizen may still appeal the latest response (the first one only, by its
    `decide_by`)."""
    return can_decide(task, today) and not is_final(task)


def _in_scope(session: Session, task: RectificationTask, scope: Scope) -> bool:
    """Whether the operator of `scope` may answer this task: its case is handled (for one of its
    items) by one of their departments."""
    if scope.allows_department(task.department_code):
        return True
    evaluation = session.get(Evaluation, task.evaluation_id)
    app = session.get(Application, evaluation.application_id) if evaluation else None
    return app is not None and scope.allows_any_department(department_codes_of(session, app))


def tell_responded(session: Session, task: RectificationTask, *, suffix: str = "") -> bool:
    """The citizen hears that the department answered (each round once): they are to read the
    answer and confirm or appeal it by `decide_by`, which they would not know to do otherwise.
    `suffix` tells again a response first told before periods were kept (its date then). The
    last round's (`final`) offers a complaint, not an appeal."""
    app = application_of(session, task)
    if app is None:
        return False
    session.add(ApplicationNotice(
        dedupe_key=f"{app.id}:rectification:{task.id}:{task.rounds}{suffix}", account_id=app.account_id,
        application_id=app.id, event_type="rectification_responded",
        created_at=clock.now() if suffix else task.responded_at,
        params={"case_number": app.case_number, "service_name": app.service_name,
                "decide_by": task.decide_by.isoformat() if task.decide_by else None,
                "final": is_final(task)},
    ))  # fmt: skip
    return True


def application_of(session: Session, task: RectificationTask) -> Application | None:
    """The task's case (None when its evaluation is gone)."""
    evaluation = session.get(Evaluation, task.evaluation_id)
    return session.get(Application, evaluation.application_id) if evaluation else None


def decide(
    session: Session, encryptor: Encryptor, *, account_id: str, evaluation_id: str, accept: bool,
    reason: str | None, working_days: int = RECTIFY_WORKING_DAYS,
) -> RectificationTask:  # fmt: skip
    """The citizen confirms the rectification or appeals it (申诉复核) by `decide_by`; one appeal
    only (`APPEAL_ROUNDS`). Commits; nothing is written when refused (a closed account: 404)."""
    open_guard.lock_for_change(session, account_id)  # an appeal racing a closure blocks it or waits
    task = locked_task(session, RectificationTask.evaluation_id == evaluation_id)
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
        calendar.hold(session)  # counted on the calendar as committed: rectification_calendar
        task.due_from, task.due_days = local_date(now), working_days
        task.due_on = calendar.add_working_days(
            session, task.due_from, working_days, region=region_of(session, task.evaluation_id)
        )
        task.escalated_at, task.decide_by, task.remind_on = None, None, None
        task.decide_from = task.decide_days = None
    session.commit()
    return task


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
