"""The files a citizen attached to a complaint, opened by the operators who handle it.

A complaint keeps its evidence after the draft it came from is deleted (the orphan sweep spares
files a complaint holds), and the handling department must be able to read it: an operator who
may read the complaint may open each of its attachments. Every opening is audited (the files
are the citizen's: photos of documents, of a counter, of a receipt).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core import audit
from core.errors import AppError
from domain.applications.deps import ApplicationDeps
from domain.applications.materials import file_content
from domain.applications.models import ApplicationFile
from domain.complaints.service import readable_by
from domain.operators.scope import UNSCOPED, Scope


class AttachmentNotFound(AppError):
    status = 404
    code = "complaints.attachment_not_found"
    message_zh = "该投诉或咨询没有这个附件"
    message_en = "The complaint or consultation has no such attachment"


@dataclass(frozen=True)
class Evidence:
    content: bytes
    media_type: str


def open_for_operator(
    session: Session,
    deps: ApplicationDeps,
    *,
    complaint_id: str,
    file_id: str,
    operator_id: str,
    request_id: str | None,
    scope: Scope = UNSCOPED,
) -> Evidence:
    """One attachment of a complaint the operator may read (404 `complaints.not_found` for a
    complaint outside their departments, as for reading it; 404
    `complaints.attachment_not_found` for a file it does not hold). Audited; commits."""
    complaint = readable_by(session, complaint_id, scope)
    row = session.get(ApplicationFile, file_id) if file_id in (complaint.attachments or []) else None
    if row is None:
        raise AttachmentNotFound()
    content = file_content(deps, row)
    audit.record(
        session, actor_type="operator", actor_id=operator_id, action="complaint.attachment_read",
        target_type="complaint", target_id=complaint.id, request_id=request_id, details={"file_id": row.id},
    )  # fmt: skip
    session.commit()
    return Evidence(content, row.media_type)
