"""Account and the channel identities (WeChat openid/unionid, phone) that lead to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, IdMixin, UTCDateTime

ACTIVE = "active"
LOCKED = "locked"
DELETED = "deleted"
ACCOUNT_STATUSES = (ACTIVE, LOCKED, DELETED)

# Channel identity kinds.
WECHAT_OPENID = "wechat_openid"  # issuer = mini-program appid
WECHAT_UNIONID = "wechat_unionid"  # issuer = "wechat-open-platform"
PHONE = "phone"  # issuer = "cn-mobile"; lookup = keyed hash, value_enc = encrypted number

UNIONID_ISSUER = "wechat-open-platform"
PHONE_ISSUER = "cn-mobile"


class Account(IdMixin, Base):
    __tablename__ = "accounts"

    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    # L1 phone or WeChat bound (every account), L2 name + ID number checked, L3 live face or
    # in-person check (domain/identity/levels.py). The time of the latest live check gives the
    # freshness a service may demand; both travel in access tokens (claims idl, ilt).
    identity_level: Mapped[str] = mapped_column(String(4), default="L1")
    live_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_via: Mapped[str] = mapped_column(String(16))  # miniprogram, app
    # Set when this account was merged into another on proving the same person.
    merged_into_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    # Set when the citizen closed the account (注销, domain/closure): status is then deleted, its
    # channel identities and personal data are gone, and only finished cases still name it.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    identities: Mapped[list[ChannelIdentity]] = relationship(
        back_populates="account", foreign_keys="ChannelIdentity.account_id"
    )


class ChannelIdentity(IdMixin, Base):
    __tablename__ = "channel_identities"
    erased_on_closure = True  # released: the same WeChat user or phone later makes a new account
    # One account per phone or WeChat user, and one of each slot per account (two phones or
    # two WeChat users of one mini-program under one account would be ambiguous).
    __table_args__ = (
        UniqueConstraint("kind", "issuer", "lookup"),
        UniqueConstraint("account_id", "kind", "issuer", name="uq_channel_identities_account_slot"),
    )
    follows_person = True  # moves on an account merge (domain/accounts/merge.py)

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    issuer: Mapped[str] = mapped_column(String(64))
    # openid/unionid as given by WeChat (pseudonymous per app); for phones an HMAC-SM3 hash.
    lookup: Mapped[str] = mapped_column(String(128))
    value_enc: Mapped[str | None] = mapped_column(Text)  # encrypted full value (phones)
    value_masked: Mapped[str | None] = mapped_column(String(32))
    session_key_enc: Mapped[str | None] = mapped_column(Text)  # WeChat session_key, encrypted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    account: Mapped[Account] = relationship(back_populates="identities", foreign_keys=[account_id])
