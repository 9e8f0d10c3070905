"""Complaints and consultations: create with a tracking number, reply, rate the reply, timeline.

The text is encrypted at rest (citizens write names, numbers and addresses into it); operators'
reads go through the admin API and are audited. A related case must be the citizen's own.

A complaint about a case belongs to every department handling one of the case's items, as
pinned (a bundle's may be several; `department_code` keeps the first item's, for display); one
without a case names no service item and belongs to no department. Operators tied to
departments (domain/operators/scope.py) see and answer only their departments' complaints: any
other is 404 `complaints.not_found` to them, as if it did not exist.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from core import audit, clock, keyset
from core.clock import local_date
from core.crypto import Encryptor
from core.db import is_id, lock_one
from core.errors import AppError, Text
from core.text import has_visible_text
from domain.applications.case_numbers import BEIJING, next_serial
from domain.applications.models import Application, ApplicationFile, ApplicationMaterial
from domain.applications.service import department_code_of, department_codes_of
from domain.complaints.models import (
    CATEGORIES,
    CLOSED,
    KINDS,
    REPLIED,
    REPLY_RATINGS,
    SUBMITTED,
    Complaint,
    ComplaintAttachment,
    ComplaintEvent,
)
from domain.operators.scope import UNSCOPED, Scope, handled_by

PURPOSE = "complaint_text"
RATE_DAYS = 15  # COMPLAINT_RATE_DAYS's default
MAX_TEXT = 2000
MAX_ATTACHMENTS = 5


class BadComplaint(AppError):
    status = 422
    code = "complaints.invalid"
    message_zh = "投诉或咨询内容有误，请检查后重试"
    message_en = "The complaint or consultation is invalid"


class ComplaintNotFound(AppError):
    status = 404
    code = "complaints.not_found"
    message_zh = "未找到该投诉或咨询"
    message_en = "Complaint or consultation not found"


class BadCursor(AppError):
    status = 400
    code = "complaints.bad_cursor"
    message_zh = "分页游标无效，请从第一页重新加载"
    message_en = "The page cursor is invalid; load from the first page"


class ComplaintState(AppError):
    status = 409
    code = "complaints.state"
    message_zh = "当前状态不允许该操作"
    message_en = "The current state does not allow this"


class AlreadyAnswered(ComplaintState):
    """One answer per round: the next round starts when the citizen rates the answer 不满意."""

    message_zh = "该投诉或咨询已答复，正在等待群众对答复的评价，不能再次答复"
    message_en = "It has been answered and awaits the citizen's rating of that answer"


class AlreadyClosed(ComplaintState):
    message_zh = "该投诉或咨询已办结，不能再答复或评价"
    message_en = "It is closed and can no longer be answered or rated"


class NotAnswered(ComplaintState):
    message_zh = "该投诉或咨询尚未答复，收到答复后才能评价"
    message_en = "It has not been answered yet; rate the answer once it comes"


def _event(
    session: Session,
    complaint: Complaint,
    kind: str,
    actor_type: str,
    actor_id: str | None,
    text_enc: str | None = None,
    **details: Any,
) -> None:
    """Append to the complaint's timeline. The caller holds the complaint's lock (`_locked`) or
    has just created it: the next seq is computed from the ones written, so two writers of one
    complaint at once would both take the same number."""
    seq = (
        session.scalar(
            select(func.max(ComplaintEvent.seq)).where(ComplaintEvent.complaint_id == complaint.id)
        )
        or 0
    ) + 1
    session.add(
        ComplaintEvent(
            complaint_id=complaint.id,
            seq=seq,
            kind=kind,
            actor_type=actor_type,
            actor_id=actor_id,
            text_enc=text_enc,
            details=details,
            at=clock.now(),
        )
    )


def create(
    session: Session,
    encryptor: Encryptor,
    *,
    account_id: str,
    kind: Any,
    category: Any,
    text: Any,
    application_id: str | None = None,
    attachments: list[str] | None = None,
) -> Complaint:
    """File a complaint or consultation; every problem is reported at once. Commits."""
    fields: dict[str, list[str]] = {}
    if kind not in KINDS:
        fields["kind"] = [Text("complaint or consultation", "应为 complaint（投诉）或 consultation（咨询）")]
    if category not in CATEGORIES:
        fields["category"] = [Text(f"One of {', '.join(CATEGORIES)}", "没有这种类别")]
    # Only invisible characters (U+200B, U+FEFF, …) count as empty: a blank complaint helps nobody.
    if not isinstance(text, str) or not has_visible_text(text) or len(text) > MAX_TEXT:
        fields["text"] = [Text(f"1 to {MAX_TEXT} characters", f"请填写 1 到 {MAX_TEXT} 个字")]
    department_code = None
    if application_id is not None:
        app = session.get(Application, application_id) if is_id(application_id) else None
        if app is None or app.account_id != account_id:
            fields["application_id"] = [Text("Not one of your cases", "不是您的办件")]
        else:
            department_code = department_code_of(session, app)
    files = list(dict.fromkeys(attachments or []))
    if len(files) > MAX_ATTACHMENTS:
        fields["attachments"] = [Text(f"At most {MAX_ATTACHMENTS} files", f"最多 {MAX_ATTACHMENTS} 个附件")]
    elif files:
        owned = set(
            session.scalars(
                select(ApplicationFile.id)
                .join(ApplicationMaterial, ApplicationMaterial.file_id == ApplicationFile.id)
                .where(ApplicationFile.id.in_(files), ApplicationFile.account_id == account_id)
                # FOR SHARE: the orphan sweep skips these rows until the attachments are committed
                .with_for_update(read=True, of=ApplicationFile)
            )
        )
        for i, file_id in enumerate(files):
            if file_id not in owned:
                fields[f"attachments.{i}"] = [Text("Not one of your files", "不是您上传的文件")]
    if fields:
        raise BadComplaint(fields=fields)
    now = clock.now()
    day = now.astimezone(BEIJING).strftime("%Y%m%d")
    prefix = "TS" if kind == "complaint" else "ZX"
    complaint = Complaint(
        tracking_no=f"{prefix}{day}{next_serial(session, f'complaint:{day}'):06d}",
        account_id=account_id,
        kind=kind,
        category=category,
        text_enc=encryptor.encrypt(text.strip(), purpose=PURPOSE),
        application_id=application_id,
        attachments=files,
        department_code=department_code,
        status=SUBMITTED,
        created_at=now,
        updated_at=now,
    )
    session.add(complaint)
    session.flush()
    session.add_all(ComplaintAttachment(complaint_id=complaint.id, file_id=f) for f in files)
    _event(session, complaint, "submitted", "citizen", account_id)
    session.commit()
    return complaint


def holds_file(file_id: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: a complaint keeps this file as its evidence (the orphan sweep leaves it alone)."""
    return exists().where(ComplaintAttachment.file_id == file_id)


def _locked(session: Session, complaint_id: str) -> Complaint | None:
    """The complaint, locked for this transaction and read afresh (not a copy the session held).

    Every change of a complaint (reply, rating) goes through here: of two at once the second
    waits for the first to commit, then judges the state it left and numbers its timeline
    events after the first one's.
    """
    if not is_id(complaint_id):
        return None
    return lock_one(session, Complaint, Complaint.id == complaint_id)


def _in_scope(session: Session, complaint: Complaint, scope: Scope) -> bool:
    """Whether the operator of `scope` may read and answer this complaint: its case is handled
    (for one of its items) by one of their departments."""
    if scope.allows_department(complaint.department_code):
        return True
    app = session.get(Application, complaint.application_id) if complaint.application_id else None
    return app is not None and scope.allows_any_department(department_codes_of(session, app))


def readable_by(session: Session, complaint_id: str, scope: Scope) -> Complaint:
    """The complaint an operator of `scope` may read (404 `complaints.not_found` otherwise, so
    another department's complaint is not revealed)."""
    complaint = session.get(Complaint, complaint_id) if is_id(complaint_id) else None
    if complaint is None or not _in_scope(session, complaint, scope):
        raise ComplaintNotFound()
    return complaint


def owned(session: Session, account_id: str, complaint_id: str, *, lock: bool = False) -> Complaint:
    """The citizen's complaint (404 for anyone else's); `lock=True` for a change (`_locked`)."""
    if lock:
        complaint = _locked(session, complaint_id)
    else:
        complaint = session.get(Complaint, complaint_id) if is_id(complaint_id) else None
    if complaint is None or complaint.account_id != account_id:
        raise ComplaintNotFound()
    return complaint


def reply(
    session: Session,
    encryptor: Encryptor,
    *,
    complaint_id: str,
    text: str,
    operator_id: str,
    scope: Scope = UNSCOPED,
    rate_days: int = RATE_DAYS,
) -> Complaint:
    """An operator's answer, to be rated by the citizen within `rate_days` Beijing days from
    today's, inclusive (`rate_by`; closed unrated after it: domain/complaints/unrated.py). The
    citizen is told by the caller, in the same transaction (the complaint stays locked until the
    caller commits, so `replies` counts exactly this answer's round). Does not commit. Another
    department's complaint is 404 to an operator tied to departments.

    One answer per round: a complaint answered and not yet rated is 409 `complaints.state` to
    a second operator (also one who waited on the lock while the first answered), so the
    citizen rates one answer and is told once; 不满意 opens the next round."""
    complaint = _locked(session, complaint_id)
    if complaint is None or not _in_scope(session, complaint, scope):
        raise ComplaintNotFound()
    if complaint.status == CLOSED:
        raise AlreadyClosed()
    if complaint.status == REPLIED:
        raise AlreadyAnswered()
    if not has_visible_text(text):  # the citizen is asked to rate this answer: it must be readable
        raise BadComplaint(fields={"text": [Text("Required", "请填写答复内容")]})
    _event(
        session,
        complaint,
        "replied",
        "operator",
        operator_id,
        encryptor.encrypt(text.strip(), purpose=PURPOSE),
    )
    complaint.status = REPLIED
    complaint.updated_at = clock.now()
    complaint.rate_by = rating_period_end(complaint.updated_at, rate_days)
    complaint.rate_reminded_at = None  # this answer gets its own reminder
    complaint.reply_rating = None  # this answer's, once rated (the timeline keeps earlier rounds')
    return complaint


def rating_period_end(answered_at: Any, days: int = RATE_DAYS) -> Any:
    """The last Beijing day (inclusive) to rate an answer given at `answered_at`: `days` days on."""
    return local_date(answered_at) + timedelta(days=days)


def rate_reply(session: Session, *, account_id: str, complaint_id: str, rating: Any) -> Complaint:
    """The citizen rates the answer; 不满意 sends it back for another reply, otherwise it closes."""
    complaint = owned(session, account_id, complaint_id, lock=True)
    if rating not in REPLY_RATINGS:
        raise BadComplaint(
            fields={"rating": [Text(f"One of {', '.join(REPLY_RATINGS)}", "应为：满意、基本满意、不满意")]}
        )
    if complaint.status != REPLIED:
        raise AlreadyClosed() if complaint.status == CLOSED else NotAnswered()
    complaint.reply_rating = rating
    complaint.status = SUBMITTED if rating == "不满意" else CLOSED
    complaint.rate_by = complaint.rate_reminded_at = None
    complaint.updated_at = clock.now()
    _event(session, complaint, "rated", "citizen", account_id, rating=rating)
    if complaint.status == CLOSED:
        _event(session, complaint, "closed", "citizen", account_id)
    session.commit()
    return complaint


def timeline(session: Session, encryptor: Encryptor, complaint: Complaint) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ComplaintEvent).where(ComplaintEvent.complaint_id == complaint.id).order_by(ComplaintEvent.seq)
    )
    return [
        {
            "kind": e.kind,
            "actor": e.actor_type,
            "at": e.at,
            "details": e.details,
            "text": encryptor.decrypt(e.text_enc, purpose=PURPOSE) if e.text_enc else None,
        }
        for e in rows
    ]


def read_for_operator(
    session: Session,
    encryptor: Encryptor,
    *,
    complaint_id: str,
    operator_id: str,
    request_id: str | None,
    scope: Scope = UNSCOPED,
) -> tuple[Complaint, str]:
    """The complaint with its text, for an operator; the read is audited. Another department's
    complaint is 404 to an operator tied to departments (nothing read, nothing audited)."""
    complaint = readable_by(session, complaint_id, scope)
    audit.record(
        session,
        actor_type="operator",
        actor_id=operator_id,
        action="complaint.read",
        target_type="complaint",
        target_id=complaint.id,
        request_id=request_id,
        details={},
    )
    session.commit()
    return complaint, encryptor.decrypt(complaint.text_enc, purpose=PURPOSE)


def replies(session: Session, complaint_id: str) -> int:
    """How many answers a complaint has had (the round of the latest)."""
    E = ComplaintEvent
    return int(
        session.scalar(select(func.count(E.id)).where(E.complaint_id == complaint_id, E.kind == "replied"))
        or 0
    )


def mine(session: Session, account_id: str) -> list[Complaint]:
    C = Complaint
    return list(session.scalars(select(C).where(C.account_id == account_id).order_by(C.created_at.desc())))


def open_queue(
    session: Session, *, cursor: str | None = None, limit: int = 50, scope: Scope = UNSCOPED
) -> tuple[list[Complaint], str | None]:
    """(complaints waiting for an answer, oldest first, then by id; the next page's cursor or
    None). The cursor is the last row's (created_at, id): a complaint answered meanwhile leaves
    the queue without shifting the pages; 400 `complaints.bad_cursor` for a malformed one. An
    operator tied to departments sees only those departments' complaints: of a case one of whose
    items they handle (the first item's department is on the row; the others are read from the
    case's pinned items)."""
    C = Complaint
    stmt = select(C).where(C.status == SUBMITTED)
    if scope.departments is not None:
        departments = sorted(scope.departments)
        stmt = stmt.where(
            or_(
                C.department_code.in_(departments),
                exists().where(
                    Application.id == C.application_id, handled_by(Application.items, departments)
                ),
            )
        )
    return keyset.time_id_page(
        session, stmt, C.created_at, C.id, cursor=cursor, limit=limit, bad_cursor=BadCursor
    )
