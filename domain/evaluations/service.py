"""Rating a completed case, the rectification of a 差评, and public figures.

A rating is one per case (一事一评) on the five named levels; the two lowest need a reason. A
差评 opens a rectification task due in `RECTIFY_WORKING_DAYS` working days of the case's
region: the department responds (admin API), the citizen confirms or appeals (申诉复核), which
sends it back for another response. Overdue tasks are escalated by the sweeper.

The task's own steps (respond, decide, the deadlines, the operators' list) are in
`domain/evaluations/rectification.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.crypto import Encryptor
from core.db import constraint_of
from core.errors import Text
from core.outbox import service as outbox
from core.text import has_visible_text
from domain.applications import states
from domain.applications.deadlines import local_date
from domain.applications.errors import ApplicationNotFound
from domain.applications.models import Application
from domain.applications.service import department_code_of, spec_of
from domain.calendar import service as calendar
from domain.evaluations.errors import (
    AlreadyRated,
    BadRating,
    NotRateable,
    NotRated,
)
from domain.evaluations.models import (
    BAD,
    CLOSED_BY_DEADLINE,
    CONFIRMED,
    INDICATORS,
    LEVELS,
    OPEN,
    Evaluation,
    RectificationTask,
)

RECTIFY_WORKING_DAYS = 5
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
        reason_enc=seal(encryptor, reason, REASON_PURPOSE), channel=channel, created_at=now,
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
        calendar.hold(session)  # counted on the calendar as committed: rectification_calendar
        due = calendar.add_working_days(session, local_date(now), working_days, region=spec.region)
        session.add(RectificationTask(evaluation_id=evaluation.id, account_id=account_id,
                                      department=evaluation.department,
                                      department_code=department_code_of(session, app), status=OPEN,
                                      due_on=due, due_from=local_date(now), due_days=working_days,
                                      rounds=1, created_at=now))  # fmt: skip
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


def seal(encryptor: Encryptor, text: Any, purpose: str) -> str | None:
    clean = (text or "").strip()[:MAX_TEXT]
    return encryptor.encrypt(clean, purpose=purpose) if clean else None


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
    """Public figures: counts per level, the share satisfied, 差评, how many the citizen confirmed
    rectified (`bad_rectified`) and how many were confirmed by default, the citizen silent past
    `decide_by` (`bad_rectified_by_default`)."""
    E, T = Evaluation, RectificationTask
    stmt = select(E.level, T.status, T.closed_by).outerjoin(T, T.evaluation_id == E.id)
    if service_code:
        stmt = stmt.where(E.service_code == service_code)
    if department:
        stmt = stmt.where(E.department == department)
    rows = session.execute(stmt).all()
    by_level = Counter(row.level for row in rows)
    total = len(rows)
    bad = sum(by_level[level] for level in BAD)
    # Confirmed by the citizen, and confirmed by default (their silence past `decide_by`, this
    # province's configured rule, not a national one): published apart, never added together.
    confirmed = [row for row in rows if row.level in BAD and row.status == CONFIRMED]
    by_default = sum(1 for row in confirmed if row.closed_by == CLOSED_BY_DEADLINE)
    return {
        "total": total,
        "levels": {level: by_level.get(level, 0) for level in LEVELS},
        "satisfied_rate": round((total - bad) / total, 4) if total else None,
        "bad": bad,
        "bad_rectified": len(confirmed) - by_default,
        "bad_rectified_by_default": by_default,
    }
