"""Operator sessions: admin access tokens, idle timeout, logout and revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import clock
from core.db import in_batches
from core.tokens import TokenInvalid, TokenService
from domain.operators.errors import AdminSessionIdle, AdminSessionRevoked
from domain.operators.models import Operator, OperatorSession
from domain.operators.scope import UNSCOPED, Scope, scope_of

TOKEN_TYPE = "operator"
ACTIVE = "active"
# A session is deleted this long after it expired: its token expired with it (revoked or not),
# and until then a token shown is told its session ended rather than that it is unknown.
SESSION_RETENTION = timedelta(days=1)
PURGE_BATCH = 500
DISABLED = "disabled"


@dataclass(frozen=True)
class OperatorPolicy:
    """Settings of operator logins and sessions (ADMIN_* and JWT_ADMIN_AUDIENCE)."""

    audience: str
    token_ttl: int
    idle_timeout: int
    lockout_threshold: int
    lockout_seconds: int
    totp_pending_ttl: int = 600  # a new TOTP secret's wait for the password change

    @classmethod
    def from_config(cls, cfg: Any) -> OperatorPolicy:
        """Build from a Flask config mapping."""
        return cls(
            audience=cfg["JWT_ADMIN_AUDIENCE"],
            token_ttl=cfg["ADMIN_TOKEN_TTL"],
            idle_timeout=cfg["ADMIN_IDLE_TIMEOUT"],
            lockout_threshold=cfg["ADMIN_LOCKOUT_THRESHOLD"],
            lockout_seconds=cfg["ADMIN_LOCKOUT_SECONDS"],
            totp_pending_ttl=cfg["ADMIN_TOTP_PENDING_TTL"],
        )


@dataclass(frozen=True)
class OperatorPrincipal:
    """The authenticated operator of an admin request; roles and scope come from the database."""

    operator_id: str
    session_id: str
    username: str
    roles: tuple[str, ...]
    scope: Scope = UNSCOPED  # the halls and departments the operator may act for
    # The password is one an admin chose: only changing it, reading oneself and logging out.
    must_change_password: bool = False

    def has_role(self, role: str) -> bool:
        return role in self.roles


def start_session(
    session: Session, *, tokens: TokenService, policy: OperatorPolicy, operator: Operator, ip: str | None
) -> tuple[str, OperatorSession]:
    """Open an operator session and mint its access token. Commits."""
    sess = add_session(session, policy=policy, operator=operator, ip=ip)
    # Commit before minting: the key ring may write a first signing key in its own transaction.
    session.commit()
    return mint_token(tokens, policy=policy, operator=operator, sess=sess), sess


def add_session(
    session: Session, *, policy: OperatorPolicy, operator: Operator, ip: str | None
) -> OperatorSession:
    """A new session row of the operator, flushed in the caller's transaction (caller commits)."""
    now = clock.now()
    sess = OperatorSession(
        operator_id=operator.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=policy.token_ttl),
        ip=(ip or None) and ip[:64],
    )
    session.add(sess)
    session.flush()
    return sess


def mint_token(
    tokens: TokenService, *, policy: OperatorPolicy, operator: Operator, sess: OperatorSession
) -> str:
    """The access token of a committed session."""
    return tokens.mint(
        audience=policy.audience,
        subject=operator.id,
        ttl=policy.token_ttl,
        claims={"sid": sess.id, "roles": list(operator.roles), "typ": TOKEN_TYPE},
    )


def _known_operator(error: Exception, operator_id: str) -> Exception:
    # Lets the request audit name the operator of a refused token; never rendered to clients.
    error.operator_id = operator_id  # type: ignore[attr-defined]
    return error


def session_ended(sess: OperatorSession, now: datetime) -> bool:
    """Whether an operator session was revoked (logout, reset, password change) or expired."""
    return sess.revoked_at is not None or sess.expires_at <= now


def authenticate_token(
    session: Session, *, tokens: TokenService, policy: OperatorPolicy, access_token: str
) -> OperatorPrincipal:
    """Verify an admin token against its live session, enforce the idle timeout, bump last_seen. Commits."""
    claims = tokens.verify(access_token, audience=policy.audience)
    sid = claims.get("sid")
    if claims.get("typ") != TOKEN_TYPE or not isinstance(sid, str):
        raise TokenInvalid()
    sess = session.get(OperatorSession, sid)
    if sess is None or sess.operator_id != claims["sub"]:
        raise TokenInvalid()
    now = clock.now()
    if session_ended(sess, now):
        raise _known_operator(AdminSessionRevoked(), sess.operator_id)
    if (now - sess.last_seen_at).total_seconds() > policy.idle_timeout:
        sess.revoked_at = now
        session.commit()
        raise _known_operator(AdminSessionIdle(), sess.operator_id)
    operator = session.get(Operator, sess.operator_id)
    if operator is None or operator.status != ACTIVE:
        sess.revoked_at = now
        session.commit()
        raise _known_operator(AdminSessionRevoked(), sess.operator_id)
    sess.last_seen_at = now
    session.commit()
    roles = tuple(operator.roles or ())
    return OperatorPrincipal(
        operator.id, sess.id, operator.username, roles, scope_of(operator),
        must_change_password=bool(operator.must_change_password),
    )  # fmt: skip


def end_session(session: Session, *, operator_id: str, session_id: str) -> None:
    """Log out: the session's token stops working at once. Commits."""
    sess = session.get(OperatorSession, session_id)
    if sess is not None and sess.operator_id == operator_id and sess.revoked_at is None:
        sess.revoked_at = clock.now()
        session.commit()


def revoke_all(session: Session, *, operator_id: str, keep: str | None = None) -> int:
    """End every open session of an operator (disabled, roles reduced, credentials changed),
    except `keep`. Caller commits."""
    now = clock.now()
    stmt = select(OperatorSession).where(
        OperatorSession.operator_id == operator_id, OperatorSession.revoked_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(OperatorSession.id != keep)
    rows = session.scalars(stmt).all()
    for sess in rows:
        sess.revoked_at = now
    return len(rows)


def purge_expired_sessions(session: Session, *, batch: int = PURGE_BATCH, batches: int = 20) -> int:
    """Delete the sessions that expired more than SESSION_RETENTION ago, `batch` per
    transaction, at most `batches` of them; each commits. An expired session never comes back,
    so nothing needs a lock. How many went. (Operator actions are audited by operator id.)"""
    expired = OperatorSession.expires_at < clock.now() - SESSION_RETENTION
    return in_batches(
        session, select(OperatorSession.id).where(expired),
        lambda ids: session.execute(delete(OperatorSession).where(OperatorSession.id.in_(ids))),
        batch=batch, batches=batches,
    )  # fmt: skip
