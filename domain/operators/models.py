"""Operator accounts and their sessions (separate from citizens)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

ROLE_ADMIN = "admin"  # manages operators
ROLE_CATALOG_EDITOR = "catalog_editor"
ROLE_CASE_OPERATOR = "case_operator"
ROLE_AUDITOR = "auditor"
ROLE_OPS = "ops"  # background jobs, dead letters
ROLE_HALL_OFFICER = "hall_officer"  # records in-person identity checks at a service hall
# An authorised third-party scanner (a bank's or utility's counter) checking certificates a citizen
# shows from the wallet, and nothing else.
ROLE_CERT_VERIFIER = "certificate_verifier"
ROLES = (
    ROLE_ADMIN, ROLE_CATALOG_EDITOR, ROLE_CASE_OPERATOR, ROLE_AUDITOR, ROLE_OPS, ROLE_HALL_OFFICER,
    ROLE_CERT_VERIFIER,
)  # fmt: skip


class Operator(IdMixin, Base):
    __tablename__ = "operators"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(Text)
    totp_secret_enc: Mapped[str] = mapped_column(Text)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # blocks code replay
    # A TOTP secret the operator asked for (POST /admin/v1/me/totp) while `must_change_password`
    # is set, encrypted like `totp_secret_enc`: the password change that clears the flag makes it
    # the operator's secret, so the admin who chose the credentials knows neither factor after.
    totp_pending_enc: Mapped[str | None] = mapped_column(Text)
    # When it was asked for: it replaces the current secret only within ADMIN_TOTP_PENDING_TTL
    # (a secret left on a screen is not good for ever).
    totp_pending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    roles: Mapped[list] = mapped_column(JSON)
    # Where the operator may act (domain/operators/scope.py): hall ids, catalog department
    # codes. Empty or null: not restricted.
    hall_ids: Mapped[list | None] = mapped_column(JSON)
    department_codes: Mapped[list | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Set while the password is one someone else chose (an admin's create or reset), or one an
    # admin asked them to replace (PATCH, a suspected leak): the operator may then only change
    # it, read their own profile and log out (403 `admin.password_change_required` elsewhere).
    # Changing their own password clears it.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OperatorSession(IdMixin, Base):
    __tablename__ = "operator_sessions"

    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(64))
