"""Sessions, their refresh tokens, and SMS one-time-code challenges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

CHANNEL_MINIPROGRAM = "miniprogram"
CHANNEL_APP = "app"
CHANNELS = (CHANNEL_MINIPROGRAM, CHANNEL_APP)


class LoginSession(IdMixin, Base):
    """One logged-in device/channel; revoking it ends every token issued in it."""

    __tablename__ = "login_sessions"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    __table_args__ = (
        # The sweeper's retention (domain.auth.sessions.purge_ended_sessions) finds ended ones by these.
        Index("ix_login_sessions_expires_at", "expires_at"),
        Index("ix_login_sessions_revoked_at", "revoked_at"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    device_label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # absolute session lifetime
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(IdMixin, Base):
    """An opaque refresh token, stored as a hash; each use rotates it."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[str] = mapped_column(ForeignKey("login_sessions.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SmsChallenge(IdMixin, Base):
    """A one-time code sent to a phone for login."""

    __tablename__ = "sms_challenges"

    phone_lookup: Mapped[str] = mapped_column(String(128), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # the sweeper's purge
    # Wrong codes typed by whoever asked for it (the same address, or the app with its
    # challenge id): OTP_MAX_ATTEMPTS of them burn the code.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Keyed hash of the address that asked for the code (null: asked for before it was kept).
    requested_by: Mapped[str | None] = mapped_column(String(128))
    # Codes typed for this number by anyone else (a stranger who knows the number): at most
    # OTP_MAX_ATTEMPTS, after which they open nothing for others, but the code stays the asker's.
    stray_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outbox_job_id: Mapped[str | None] = mapped_column(String(36))
