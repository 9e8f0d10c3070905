"""The wallet's view of the citizen's certificates, and the QR presentations made from them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

STATES = {
    "01": ("有效", "Valid"),
    "02": ("暂扣", "Suspended"),
    "03": ("撤销", "Revoked"),
    "04": ("注销", "Cancelled"),
    "05": ("失效", "Expired"),
    "07": ("吊销", "Withdrawn"),
}
VALID = "01"


class WalletCertificate(IdMixin, Base):
    """A certificate as last read from the library (a cache: the library is the authority).

    Not moved on an account merge: the surviving account reads its certificates afresh.
    """

    __tablename__ = "wallet_certificates"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    erased_on_closure = True  # a cache of the library: nothing of record
    __table_args__ = (UniqueConstraint("account_id", "identifier"),)

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    identifier: Mapped[str] = mapped_column(String(128))
    type_code: Mapped[str] = mapped_column(String(21))
    type_name: Mapped[str] = mapped_column(String(100))  # as long as the catalog's type names
    issuer: Mapped[str] = mapped_column(String(128))
    holder_name_enc: Mapped[str] = mapped_column(Text)
    number_enc: Mapped[str] = mapped_column(Text)
    number_masked: Mapped[str] = mapped_column(String(64))
    own: Mapped[bool] = mapped_column(Boolean)  # False: a minor child's certificate the parent may use
    state: Mapped[str] = mapped_column(String(2))
    issued_on: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Presentation(Base):
    """A QR token shown at a counter: single use, short-lived."""

    __tablename__ = "certificate_presentations"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    erased_on_closure = True

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the token's jti
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("wallet_certificates.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verifier_type: Mapped[str | None] = mapped_column(String(16))
    verifier_id: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str | None] = mapped_column(String(16))
