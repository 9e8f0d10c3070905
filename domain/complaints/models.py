"""Complaints and consultations with their timelines."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

KINDS = ("complaint", "consultation")  # 投诉, 咨询
CATEGORIES = ("service_attitude", "efficiency", "materials", "online_platform", "fees", "policy", "other")
SUBMITTED = "submitted"  # 已受理
REPLIED = "replied"  # 已答复
CLOSED = "closed"  # 已办结 (the citizen rated the reply, or left it unrated past `rate_by`)
STATUS_LABELS = {
    SUBMITTED: ("已受理", "Received"),
    REPLIED: ("已答复", "Replied"),
    CLOSED: ("已办结", "Closed"),
}
REPLY_RATINGS = ("满意", "基本满意", "不满意")


class Complaint(IdMixin, Base):
    __tablename__ = "complaints"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    follows_person = True

    tracking_no: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    text_enc: Mapped[str] = mapped_column(Text)  # encrypted: citizens write personal details here
    # A complaint outlives the draft it named (drafts are deleted and purged).
    application_id: Mapped[str | None] = mapped_column(ForeignKey("applications.id", ondelete="SET NULL"))
    attachments: Mapped[list[str]] = mapped_column(JSON)  # file ids of the citizen's uploads
    # The catalog department handling the related case's (first) item; None without a case.
    # Operators tied to departments see only their departments' complaints.
    department_code: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SUBMITTED)
    reply_rating: Mapped[str | None] = mapped_column(String(8))
    # While an answer awaits the citizen's rating: the last Beijing day to rate it (inclusive);
    # the sweeper closes it unrated after (domain/complaints/unrated.py). None in other states.
    rate_by: Mapped[date | None] = mapped_column(Date, index=True)
    # When the citizen was reminded to rate this answer (domain/complaints/rate_reminder.py): once
    # an answer round, so cleared with `rate_by` whenever a new answer is given or it is rated.
    rate_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ComplaintAttachment(Base):
    """A file a complaint keeps as evidence, by file id: the orphan sweep asks this table (indexed
    by file) which files to keep, whichever account now owns them. `Complaint.attachments`
    keeps the citizen's order for display; both are written together at creation."""

    __tablename__ = "complaint_attachments"

    complaint_id: Mapped[str] = mapped_column(
        ForeignKey("complaints.id", ondelete="CASCADE"), primary_key=True
    )
    # No ON DELETE: the database itself refuses to delete a file a complaint holds.
    file_id: Mapped[str] = mapped_column(ForeignKey("application_files.id"), primary_key=True, index=True)


class ComplaintEvent(IdMixin, Base):
    """One step of a complaint's timeline (submitted, replied, rated, closed)."""

    __tablename__ = "complaint_events"
    __table_args__ = (UniqueConstraint("complaint_id", "seq"),)

    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))  # citizen, operator
    actor_id: Mapped[str | None] = mapped_column(String(64))
    text_enc: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
