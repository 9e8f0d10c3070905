"""Third-party OAuth clients, the citizen's grants to them, codes, token families, refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

PENDING = "pending"
APPROVED = "approved"
SUSPENDED = "suspended"
CLIENT_STATUSES = (PENDING, APPROVED, SUSPENDED)

CONFIDENTIAL = "confidential"
PUBLIC = "public"  # a native app: no secret, loopback or custom-scheme redirects, PKCE only

SECRET_BASIC = "client_secret_basic"
PRIVATE_KEY_JWT = "private_key_jwt"
NO_AUTH = "none"


class OAuthClient(Base):
    """A convenience app registered by an operator."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the client_id
    name: Mapped[str] = mapped_column(String(64))
    logo_url: Mapped[str | None] = mapped_column(String(300))
    contact: Mapped[str] = mapped_column(String(128))
    client_type: Mapped[str] = mapped_column(String(16))
    auth_method: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    jwks: Mapped[dict | None] = mapped_column(JSON)
    redirect_uris: Mapped[list] = mapped_column(JSON)
    scopes: Mapped[str] = mapped_column(String(300))  # allowed scopes, space separated
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(36))
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_changed_by: Mapped[str | None] = mapped_column(String(36))


class OAuthGrant(IdMixin, Base):
    """A citizen's consent to one client: which scopes, until when. Revoking it ends every token."""

    __tablename__ = "oauth_grants"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    # One live grant per citizen and app: a second consent updates it, two at once cannot both insert.
    __table_args__ = (
        Index(
            "uq_oauth_grants_live", "account_id", "client_id", unique=True,
            postgresql_where=text("revoked_at IS NULL"), sqlite_where=text("revoked_at IS NULL"),
        ),
    )  # fmt: skip
    # Not `follows_person`: on an account merge the closed account's grants stay with it and end
    # (domain.auth.sessions.revoke_all): the surviving account never consented to those apps.

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    scopes: Mapped[str] = mapped_column(String(300))
    consent_version: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(String(32))


class OAuthCode(IdMixin, Base):
    """An authorization code, stored as a hash; redeemed once by a conditional update."""

    __tablename__ = "oauth_codes"
    erased_on_closure = True  # unredeemed codes of grants the closure ends

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str] = mapped_column(String(36))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(300))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    family_id: Mapped[str | None] = mapped_column(String(36))
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OAuthTokenFamily(IdMixin, Base):
    """The tokens descended from one code: access tokens carry its id as `sid`."""

    __tablename__ = "oauth_token_families"

    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id"), index=True)
    code_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(String(32))


class OAuthRefreshToken(IdMixin, Base):
    """An opaque refresh token, stored as a hash; each use rotates it."""

    __tablename__ = "oauth_refresh_tokens"

    family_id: Mapped[str] = mapped_column(ForeignKey("oauth_token_families.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
