"""Verified identities, verification attempts and consent records.

Names and ID numbers are stored only as SM4-GCM ciphertext (core.crypto, with key ids) and a
masked copy for display; `id_lookup` is an HMAC-SM3 blind index that finds and de-duplicates
ID numbers without storing them. No face image, video or template is ever stored: a
verification keeps its result, score, provider request id and times.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

# Methods.
WECHAT_FACE = "wechat_face"
TENCENT_FACEID = "tencent_faceid"
ALIPAY_FACE = "alipay_face"
ID_CHECK = "id_check"
IN_PERSON = "in_person"
FACE_METHODS = (WECHAT_FACE, TENCENT_FACEID, ALIPAY_FACE)
CITIZEN_METHODS = (*FACE_METHODS, ID_CHECK)

# Verification statuses.
PENDING = "pending"
PASSED = "passed"
FAILED = "failed"
EXPIRED = "expired"

# Consent purposes.
CONSENT_FACE = "face_verification"


class VerifiedIdentity(IdMixin, Base):
    """The real-name identity an account has proved; one per account, one account per ID number."""

    __tablename__ = "verified_identities"
    erased_on_closure = True  # with its blind index: the ID number may prove a new account
    shown_in_account_views = True  # GET /v1/identity is cached (domain/accounts/profile_cache.py)
    # It is the person's: a merge moves it with them (only ever from an account that holds it to
    # one that holds none: domain/accounts/service.bind_phone and domain/identity/merge refuse a
    # merge of two verified accounts).
    follows_person = True

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), unique=True)
    id_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    name_enc: Mapped[str] = mapped_column(Text)
    id_number_enc: Mapped[str] = mapped_column(Text)
    name_masked: Mapped[str] = mapped_column(String(40))
    id_number_masked: Mapped[str] = mapped_column(String(24))
    level: Mapped[str] = mapped_column(String(4))  # L2 or L3
    method: Mapped[str] = mapped_column(String(24))  # of the latest proof
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())  # first proof
    live_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # latest face / in-person
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdentityVerification(IdMixin, Base):
    """One attempt to prove an identity with one method.

    The encrypted name, ID number and provider handle are kept only while the attempt is
    pending (the provider needs them to answer); finishing it erases them.
    """

    __tablename__ = "identity_verifications"
    erased_on_closure = True  # face results, blind index and masked values go with the account
    # The sweeper's query: pending attempts past their provider lifetime.
    __table_args__ = (Index("ix_identity_verifications_status_expires_at", "status", "expires_at"),)
    follows_person = True  # the person's history moves with them on a merge

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    method: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    out_ref: Mapped[str] = mapped_column(String(32), unique=True)  # our reference sent to the provider
    id_lookup: Mapped[str] = mapped_column(String(64), index=True)
    name_masked: Mapped[str] = mapped_column(String(40))
    id_number_masked: Mapped[str] = mapped_column(String(24))
    name_enc: Mapped[str | None] = mapped_column(Text)
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    provider_ref_enc: Mapped[str | None] = mapped_column(Text)
    consent_id: Mapped[str | None] = mapped_column(ForeignKey("consent_records.id"))
    operator_id: Mapped[str | None] = mapped_column(String(36))  # in-person checks
    hall: Mapped[str | None] = mapped_column(String(64))  # the hall's name (or a typed one)
    hall_id: Mapped[str | None] = mapped_column(String(36))  # the hall named by id, if it was
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(32))
    provider_code: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    provider_request_id: Mapped[str | None] = mapped_column(String(64))


class ConsentRecord(IdMixin, Base):
    """A citizen's explicit consent to one purpose, with the text version they saw."""

    __tablename__ = "consent_records"
    follows_person = True

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    text_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
