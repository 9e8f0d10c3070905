"""Rating a completed case, the rectification of a 差评, and public figures.

A rating is one per case (一事一评) on the five named levels; the two lowest need a reason. A
差评 opens a rectification task due in `RECTIFY_WORKING_DAYS` working days of the case's
region: the department responds (admin API), the citizen confirms or appeals (申诉复核), which
sends it back for another response. Overdue tasks are escalated by the sweeper.

A rectification ends. The national rules (国办发〔2019〕51号) give an appeal route but no number
of rounds: one review round after the first response (`APPEAL_ROUNDS`), then the citizen
confirms (a further appeal is 409 `evaluations.appeal_limit`; a complaint remains open to
them). Each response gives the citizen `DECIDE_WORKING_DAYS` working days of the case's region
to confirm or appeal it (`decide_by`, the last of them); afterwards a decision is 409
`evaluations.decision_closed` and the sweeper confirms the task by default (`closed_by`
"deadline", audited as `rectification.confirmed_by_default`), as 差评 rules count a citizen who
stays silent as satisfied with the rectification.

A task belongs to every department handling one of the case's items, as pinned (a bundle's may
be several; `department_code` keeps the first item's, for display): operators tied to
departments list and answer only those tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock, keyset
from core.crypto import Encryptor
from core.db import constraint_of, is_id, lock_one
from core.errors import Text
from core.outbox import service as outbox
from core.text import has_visible_text
from domain.applications import states
from domain.applications.deadlines import local_date
from domain.applications.errors import ApplicationNotFound
from domain.applications.models import Application, ApplicationNotice
from domain.applications.service import department_code_of, department_codes_of, spec_of
from domain.calendar import service as calendar
from domain.evaluations.errors import (
    AlreadyRated,
    AppealLimit,
    AwaitingDecision,
    BadCursor,
    BadRating,
    DecisionClosed,
    NotRateable,
    NotRated,
    NotResponded,
    TaskClosed,
    TaskNotFound,
)
from domain.evaluations.models import (
    APPEALED,
    BAD,
    CLOSED_BY_CITIZEN,
    CLOSED_BY_DEADLINE,
    CONFIRMED,
    INDICATORS,
    LEVELS,
    OPEN,
    RESPONDED,
    Evaluation,
    RectificationTask,
)
from domain.operators.scope import UNSCOPED, Scope, handled_by

RECTIFY_WORKING_DAYS = 5
APPEAL_ROUNDS = 1  # review rounds (申诉复核) after the first response
DECIDE_WORKING_DAYS = 5  # to confirm or appeal a response, counted from the day it was given
MAX_TEXT = 500
# The numeric scales provinces use (domain.md): the same name maps to opposite numbers.
SCALES = {
    "gbt39046": {name: i + 1 for i, name in enumerate(LEVELS)},  # 1 = 非常满意
    "zhejiang": {name: 5 - i for i, name in enumerate(LEVELS)},  # 1 = 非常不满意
}


def to_number(level: str, scale: str) -> int:
    """A named level as a province's number (only at the boundary)."""
    return SCALES[scale][level]


def from_number(value: int, scale: str) -> str:
    return {v: k for k, v in SCALES[scale].items()}[value]


def _check(level: Any, indicators: Any, reason: Any) -> dict[str, Any]:
    fields: dict[str, list[str]] = {}
    if level not in LEVELS:
        fields["level"] = [Text(f"One of {', '.join(LEVELS)}", f"应为：{'、'.join(LEVELS)}")]
    clean: dict[str, str] = {}
    if indicators is not None and not isinstance(indicators, Mapping):
        fields["indicators"] = [Text("An object of indicator levels", "应为各项指标的评价")]
    else:
        for key, value in (indicators or {}).items():
            if key not in INDICATORS:
                fields[f"indicators.{key}"] = [Text("Unknown indicator", "没有这项指标")]
            elif value not in LEVELS:
                fields[f"indicators.{key}"] = [Text("Not a level", "不是有效的评价等级")]
            else:
                clean[key] = value
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_TEXT):
        fields["reason"] = [Text(f"At most {MAX_TEXT} characters", f"不能超过 {MAX_TEXT} 个字")]
    # Invisible characters only (U+200B, U+FEFF, …) are no reason: the department could not read it.
    elif level in BAD and not has_visible_text(reason or ""):
        fields["reason"] = [Text("A reason is required for this level", "差评请说明原因，便于整改")]
    if fields:
        raise BadRating(fields=fields)
    return clean


REASON_PURPOSE = "evaluation-reason"
APPEAL_PURPOSE = "evaluation-appeal"


def reason_of(evaluation: Evaluation, encryptor: Encryptor) -> str | None:
    """The rating's reason as the citizen wrote it (their own text, or the province's copy)."""
    if evaluation.reason_enc is None:
        return None
    return encryptor.decrypt(evaluation.reason_enc, purpose=REASON_PURPOSE)


def appeal_reason_of(task: RectificationTask, encryptor: Encryptor) -> str | None:
    if task.appeal_reason_enc is None:
        return None
    return encryptor.decrypt(task.appeal_reason_enc, purpose=APPEAL_PURPOSE)


def rate(
    session: Session, encryptor: Encryptor, *, account_id: str, application_id: str, level: Any,
    indicators: Any = None, reason: Any = None, channel: str = "app",
    working_days: int = RECTIFY_WORKING_DAYS,
) -> Evaluation:  # fmt: skip
    """Rate the citizen's completed case once; a 差评 opens its rectification task. Commits."""
    clean = _check(level, indicators, reason)
    app = session.get(Application, application_id)
    if app is None or app.account_id != account_id:
        raise ApplicationNotFound()
    if app.status not in (states.COMPLETED, states.RESULT_DELIVERED):
        raise NotRateable()
    now = clock.now()
    spec = spec_of(session, app)
    first = app.items[0] if app.items else {}
    evaluation = Evaluation(
        application_id=app.id, account_id=account_id, service_code=str(first.get("code") or ""),
        department=(spec.departments[0] if spec.departments else None), level=level, indicators=clean,
        reason_enc=_sealed(encryptor, reason, REASON_PURPOSE), channel=channel, created_at=now,
    )  # fmt: skip
    session.add(evaluation)
    try:
        session.flush()
    except IntegrityError as exc:
        if constraint_of(exc) != "uq_evaluations_application_id":
            raise  # not a second rating of the case: no "already rated" for another failure
        session.rollback()
        raise AlreadyRated() from None
    if level in BAD:
        due = calendar.add_working_days(session, local_date(now), working_days, region=spec.region)
        session.add(RectificationTask(evaluation_id=evaluation.id, account_id=account_id,
                                      department=evaluation.department,
                                      department_code=department_code_of(session, app), status=OPEN,
                                      due_on=due, rounds=1, created_at=now))  # fmt: skip
    # Forwarded to the province by a job written in this transaction (workers/tasks/evaluations.py).
    outbox.add(session, "evaluation.forward", {"evaluation_id": evaluation.id})
    session.commit()
    return evaluation


def of_case(session: Session, *, account_id: str, application_id: str) -> Evaluation:
    """The citizen's rating of their case, for them to read with its rectification: the
    department's response must be readable before they confirm or appeal it. 404
    applications.not_found for anyone else's case (as everywhere), evaluations.not_rated when
    their case has no rating yet."""
    app = session.get(Application, application_id)
    if app is None or app.account_id != account_id:
        raise ApplicationNotFound()
    evaluation = session.scalar(select(Evaluation).where(Evaluation.application_id == app.id))
    if evaluation is None:
        raise NotRated()
    return evaluation


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
    task.decide_by = _decide_by(session, task, task.responded_at, decide_days)
    _tell_responded(session, task)
    session.commit()
    return task


def _region_of(session: Session, task: RectificationTask) -> str:
    """The case's region, whose calendar counts the task's working days."""
    evaluation = session.get(Evaluation, task.evaluation_id)
    app = session.get(Application, evaluation.application_id) if evaluation else None
    return spec_of(session, app).region if app else "000000"


def _decide_by(session: Session, task: RectificationTask, responded_at: datetime, days: int) -> Any:
    return calendar.add_working_days(
        session, local_date(responded_at), days, region=_region_of(session, task)
    )


def can_appeal(task: RectificationTask) -> bool:
    """Whether the citizen may still appeal the latest response (the first one only)."""
    return task.status == RESPONDED and task.rounds <= APPEAL_ROUNDS


def _in_scope(session: Session, task: RectificationTask, scope: Scope) -> bool:
    """Whether the operator of `scope` may answer this task: its case is handled (for one of its
    items) by one of their departments."""
    if scope.allows_department(task.department_code):
        return True
    evaluation = session.get(Evaluation, task.evaluation_id)
    app = session.get(Application, evaluation.application_id) if evaluation else None
    return app is not None and scope.allows_any_department(department_codes_of(session, app))


def _tell_responded(session: Session, task: RectificationTask) -> None:
    """The citizen hears that the department answered (each round once): they are to read the
    answer and confirm or appeal it, which they would not know to do otherwise."""
    evaluation = session.get(Evaluation, task.evaluation_id)
    app = session.get(Application, evaluation.application_id) if evaluation else None
    if app is None:
        return
    session.add(ApplicationNotice(
        dedupe_key=f"{app.id}:rectification:{task.id}:{task.rounds}", account_id=app.account_id,
        application_id=app.id, event_type="rectification_responded", created_at=task.responded_at,
        params={"case_number": app.case_number, "service_name": app.service_name,
                "decide_by": task.decide_by.isoformat() if task.decide_by else None},
    ))  # fmt: skip


def _sealed(encryptor: Encryptor, text: Any, purpose: str) -> str | None:
    clean = (text or "").strip()[:MAX_TEXT]
    return encryptor.encrypt(clean, purpose=purpose) if clean else None


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
        task.appeal_reason_enc = _sealed(encryptor, reason, APPEAL_PURPOSE)
        task.due_on = calendar.add_working_days(
            session, local_date(now), working_days, region=_region_of(session, task)
        )
        task.escalated_at, task.decide_by = None, None
    session.commit()
    return task


def close_undecided(session: Session, now: datetime, *, decide_days: int = DECIDE_WORKING_DAYS) -> int:
    """Responses the citizen neither confirmed nor appealed by `decide_by` are confirmed by
    default (`closed_by` "deadline"), each audited. A response given before deadlines were kept
    gets its `decide_by` first, counted from when it was given. Each task is locked and read
    afresh, so a citizen's decision at the same moment is applied once. Commits."""
    T = RectificationTask
    for task in session.scalars(select(T).where(T.status == RESPONDED, T.decide_by.is_(None))):
        task.decide_by = _decide_by(session, task, task.responded_at or now, decide_days)
    session.commit()
    today, closed = local_date(now), 0
    late = session.scalars(select(T.id).where(T.status == RESPONDED, T.decide_by < today)).all()
    for task_id in late:
        task = _locked_task(session, T.id == task_id)
        if task is None or task.status != RESPONDED or task.decide_by is None or task.decide_by >= today:
            session.rollback()
            continue
        task.status, task.closed_at, task.closed_by = CONFIRMED, now, CLOSED_BY_DEADLINE
        audit.record(
            session, actor_type="system", actor_id=None, action="rectification.confirmed_by_default",
            target_type="rectification_task", target_id=task.id,
            details={"decide_by": task.decide_by.isoformat(), "rounds": task.rounds},
        )  # fmt: skip
        session.commit()
        closed += 1
    return closed


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
    from datetime import timedelta

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


def province_push(
    session: Session, evaluation: Evaluation, encryptor: Encryptor, *, scale: str, channels: dict[str, str]
) -> dict[str, Any]:
    """The province's push for an evaluation: the level as its number, channel and indicators."""
    app = session.get(Application, evaluation.application_id)
    detail = {k: to_number(v, scale) for k, v in (evaluation.indicators or {}).items()}
    return {
        "evaluation_id": evaluation.id, "projectNo": app.case_number if app else None,
        "satisfaction": to_number(evaluation.level, scale), "assessNumber": 1,
        "pf": {"miniprogram": "2", "app": "2", "web": "1"}.get(evaluation.channel, "5"),
        "userProp": "1", "proStatus": "3", "evalDetail": detail or None,
        "writingEvaluation": reason_of(evaluation, encryptor),
        "evaluatedAt": evaluation.created_at.isoformat(),
    }  # fmt: skip


def ratings(
    session: Session, *, service_code: str | None = None, department: str | None = None
) -> dict[str, Any]:
    """Public figures: counts per level, the share satisfied, 差评 and how many were rectified."""
    E, T = Evaluation, RectificationTask
    stmt = select(E.level, T.status).outerjoin(T, T.evaluation_id == E.id)
    if service_code:
        stmt = stmt.where(E.service_code == service_code)
    if department:
        stmt = stmt.where(E.department == department)
    rows = session.execute(stmt).all()
    by_level = Counter(level for level, _ in rows)
    total = len(rows)
    bad = sum(by_level[level] for level in BAD)
    rectified = sum(1 for level, status in rows if level in BAD and status == CONFIRMED)
    return {
        "total": total,
        "levels": {level: by_level.get(level, 0) for level in LEVELS},
        "satisfied_rate": round((total - bad) / total, 4) if total else None,
        "bad": bad,
        "bad_rectified": rectified,
    }
