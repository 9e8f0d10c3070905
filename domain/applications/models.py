"""Tables of applications: the case, its timeline, its materials and files, its outbox rows.

Form data holds names, ID numbers and phones, so it is stored encrypted (SM4-GCM with a key id,
`data_enc`); provenance, statuses and counters are plain. `revision` is the optimistic-locking
counter behind ETag / If-Match; `submission_version` is the province's VERSION (1 on
submission, +1 on every resubmission).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

KIND_ITEM = "item"
KIND_BUNDLE = "bundle"


class Application(IdMixin, Base):
    __tablename__ = "applications"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    follows_person = True  # a merged account's drafts and cases move with the person
    shown_in_account_views = True  # the list's first page is cached (domain/accounts/profile_cache.py)
    shown_in_application_view = "id"  # and so is the detail
    __table_args__ = (
        Index("ix_applications_account_created", "account_id", "created_at", "id"),  # the phone's list
        Index("ix_applications_status_expires", "status", "expires_at"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(8))  # item, bundle
    service_code: Mapped[str] = mapped_column(String(31), index=True)  # the (first) item's 实施编码
    bundle_code: Mapped[str | None] = mapped_column(String(32))
    # [{code, version}] pinned at creation; one entry for a single item.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    service_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(24))
    result: Mapped[str | None] = mapped_column(String(16))  # approved, denied (completed cases)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    submission_version: Mapped[int] = mapped_column(Integer, default=0)
    data_enc: Mapped[str] = mapped_column(Text)
    # field path -> {source, record_id, retrieved_at, verified, read_only, masked}
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    # While a supplement is requested: {fields: [...], materials: [...], reason}
    supplement: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    case_number: Mapped[str | None] = mapped_column(String(48), unique=True)
    consent_id: Mapped[str | None] = mapped_column(ForeignKey("consent_records.id"))
    created_channel: Mapped[str] = mapped_column(String(16))
    # The channel of the latest submission or resubmission (the province's 申报渠道).
    submitted_channel: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # drafts only
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The promised-time clock: starts on acceptance, stops while paused.
    clock_started_on: Mapped[date | None] = mapped_column(Date)
    paused_on: Mapped[date | None] = mapped_column(Date)
    paused_working_days: Mapped[int] = mapped_column(Integer, default=0)
    paused_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # calendar days
    due_on: Mapped[date | None] = mapped_column(Date)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Measured burden, fixed at (re)submission.
    fields_prefilled: Mapped[int] = mapped_column(Integer, default=0)
    fields_typed: Mapped[int] = mapped_column(Integer, default=0)
    materials_without_upload: Mapped[int] = mapped_column(Integer, default=0)
    materials_uploaded: Mapped[int] = mapped_column(Integer, default=0)
    # The province's side: its receipt for the latest version, and the last stage event applied.
    province_receipt_no: Mapped[str | None] = mapped_column(String(64))
    province_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    province_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When reconciliation last asked the province about the case (domain/forwarding/reconcile.py).
    province_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApplicationEvent(IdMixin, Base):
    """One line of a case's timeline: every transition, with time, actor and note."""

    __tablename__ = "application_events"
    __table_args__ = (UniqueConstraint("application_id", "seq"),)

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_type: Mapped[str] = mapped_column(String(16))  # citizen, province, operator, system
    actor_id: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The province's event id when it came from a callback: the same event applies once.
    external_id: Mapped[str | None] = mapped_column(String(64))


class ApplicationFile(IdMixin, Base):
    """An uploaded file. Referenced by ApplicationMaterial rows; unreferenced ones are swept."""

    __tablename__ = "application_files"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    follows_person = True

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    material_id: Mapped[str] = mapped_column(String(32))
    storage_key: Mapped[str] = mapped_column(String(256), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(32))
    name_enc: Mapped[str | None] = mapped_column(Text)  # file names can hold personal data
    # The data key the stored blob is encrypted under (None: stored before this was recorded), so
    # a re-encryption after a key rotation fetches only the blobs still under an older key.
    blob_key_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApplicationMaterial(IdMixin, Base):
    """How one material of an application is satisfied: an uploaded or reused file, or a reference."""

    __tablename__ = "application_materials"
    shown_in_application_view = "application_id"  # the detail lists materials (profile_cache)
    __table_args__ = (UniqueConstraint("application_id", "material_id", "file_id"),)

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    material_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # upload, reuse, ecert, shared
    file_id: Mapped[str | None] = mapped_column(ForeignKey("application_files.id"), index=True)
    ref: Mapped[str | None] = mapped_column(String(128))  # e-certificate / shared-data record id
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime())


OUTBOX_DEAD = "dead"  # an outbox row the forwarder gave up on (domain/forwarding/delivery.DEAD)
# A submission row the citizen's withdrawal made needless: never sent, or given up on (a dead
# letter no one should replay once the case is withdrawn). Final, like delivered.
OUTBOX_CANCELLED = "cancelled"


class ForwardingOutbox(IdMixin, Base):
    """One row per submission, resubmission or withdrawal for the forwarding worker.

    Written in the same transaction as the state change. The worker (domain/forwarding)
    claims it with a lease, sends it, and records the receipt: pending → sending → delivered,
    or → retrying (next_attempt_at) → …, or → dead (the province's reason; an operator corrects
    and replays). Rows of one application go out in order.
    """

    __tablename__ = "forwarding_outbox"
    __table_args__ = (
        UniqueConstraint("application_id", "kind", "submission_version"),
        Index("ix_forwarding_outbox_state_next", "state", "next_attempt_at"),
    )

    # Looked up by the unique constraint's first column: no index of its own.
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(16))  # submit, resubmit, withdraw
    submission_version: Mapped[int] = mapped_column(Integer)
    case_number: Mapped[str] = mapped_column(String(48))
    profile: Mapped[str] = mapped_column(String(32), default="reference", server_default="reference")
    state: Mapped[str] = mapped_column(String(16), default="pending")  # ix_..._state_next leads with it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the latest attempt
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # by an operator
    receipt_no: Mapped[str | None] = mapped_column(String(64))
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Operator corrections merged into the upstream body when a dead letter is replayed.
    overrides: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)  # withdrawal reason


class ApplicationNotice(IdMixin, Base):
    """A change the citizen should hear about (received, accepted, supplement, refused, completed).

    Written with the transition; the notifications layer turns each into messages on the
    citizen's channels. `dedupe_key` makes the same change notify once.
    """

    __tablename__ = "application_notices"
    follows_person = True

    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CaseSerial(Base):
    """The last serial handed out per case-number scope (e.g. 实施编码 + day)."""

    __tablename__ = "case_serials"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
