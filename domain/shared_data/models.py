"""The citizen's authorisation to fetch shared data for one application, and what came back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

FOUND = "found"
NO_RECORD = "no_record"
PENDING = "pending"  # conditional data: the owning department is reviewing the request
DENIED = "denied"  # the department refused to share
UNAVAILABLE = "unavailable"  # the exchange could not be reached; the citizen can retry or upload
PURGED = "purged"  # the values were deleted once the application no longer needed them
STATUS_LABELS = {
    FOUND: ("已获取", "Retrieved"),
    NO_RECORD: ("无记录", "No record"),
    PENDING: ("部门审核中", "Awaiting the department's approval"),
    DENIED: ("部门未同意共享", "The department declined to share"),
    UNAVAILABLE: ("暂时无法获取", "Temporarily unavailable"),
    PURGED: ("已按规定删除", "Deleted as required"),
    # A notice's word only: retrieved, but it fills or proves nothing this application needs.
    "not_usable": ("已获取但不能用于本次申请", "retrieved, but it cannot be used for this application"),
}


class SharingGrant(IdMixin, Base):
    """One application's data-sharing authorisation (统一受理、平台授权)."""

    __tablename__ = "sharing_grants"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    shown_in_application_view = "application_id"  # the detail shows the grant (profile_cache)
    follows_person = True

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # Cleared when a draft is deleted or purged: the grant stays until the exchange has been
    # told to close the authorisation (purge_finished), and as the record of what was allowed.
    application_id: Mapped[str | None] = mapped_column(
        ForeignKey("applications.id", ondelete="SET NULL"), unique=True
    )
    consent_id: Mapped[str] = mapped_column(ForeignKey("consent_records.id"))
    datasets: Mapped[list[str]] = mapped_column(JSON)
    certificate_types: Mapped[list[str]] = mapped_column(JSON)
    remote_id: Mapped[str | None] = mapped_column(String(64))  # the exchange's authorisation id
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SharedRecord(IdMixin, Base):
    """One dataset fetched for one application; values encrypted, deleted when no longer needed."""

    __tablename__ = "shared_records"
    shown_in_application_view = "application_id"  # the detail shows each record's status
    __table_args__ = (UniqueConstraint("application_id", "dataset"),)
    follows_person = True

    grant_id: Mapped[str] = mapped_column(ForeignKey("sharing_grants.id", ondelete="CASCADE"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    remote_record_id: Mapped[str | None] = mapped_column(String(128))
    ticket: Mapped[str | None] = mapped_column(String(64))
    values_enc: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retrieved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expected_by: Mapped[date | None] = mapped_column(Date)  # pending: 10 working days after the request
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
