"""Sessions and tokens: start, refresh with rotation and reuse detection, revoke, list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, or_, select, update
from sqlalchemy.orm import Session

from core import clock
from core.crypto import random_token, token_hash
from core.db import in_batches
from core.tokens import TokenInvalid, TokenService
from domain.accounts.models import DELETED, Account
from domain.accounts.service import ensure_usable
from domain.auth.errors import (
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionNotFound,
    SessionRevoked,
)
from domain.auth.models import LoginSession, RefreshToken
from domain.auth.revocation import Alongside, RevocationList
from domain.oauth import tokens as oauth_tokens


@dataclass
class SessionPolicy:
    audience: str
    access_ttl: int
    refresh_ttl: int
    max_age: int


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    account_id: str
    token_type: str = "Bearer"


def _mint_access(tokens: TokenService, policy: SessionPolicy, account: Account, sess: LoginSession) -> str:
    return access_token_for(
        tokens, policy, account_id=account.id, session_id=sess.id, channel=sess.channel,
        identity_level=account.identity_level, live_checked_at=account.live_checked_at,
    )  # fmt: skip


def access_token_for(
    tokens: TokenService,
    policy: SessionPolicy,
    *,
    account_id: str,
    session_id: str,
    channel: str,
    identity_level: str,
    live_checked_at: datetime | None,
) -> str:
    """An access token of an open session (the caller has checked it is open and the account usable)."""
    return tokens.mint(
        audience=policy.audience,
        subject=account_id,
        ttl=policy.access_ttl,
        claims=_identity_claims(identity_level, live_checked_at)
        | {"typ": "citizen", "sid": session_id, "channel": channel},
    )


def identity_claims(account: Account) -> dict[str, Any]:
    """The assurance claims of an access token: level, and when the latest live check was."""
    return _identity_claims(account.identity_level, account.live_checked_at)


def _identity_claims(level: str, live_checked_at: datetime | None) -> dict[str, Any]:
    claims: dict[str, Any] = {"idl": level}
    if live_checked_at is not None:
        claims["ilt"] = int(live_checked_at.timestamp())
    return claims


def reissue_access(
    session: Session, *, tokens: TokenService, policy: SessionPolicy, account_id: str, session_id: str
) -> str:
    """A new access token for an open session, carrying the account's current assurance."""
    account = session.get(Account, account_id)
    sess = session.get(LoginSession, session_id)
    if account is None or sess is None or sess.account_id != account_id or sess.revoked_at is not None:
        raise SessionRevoked()
    if sess.expires_at <= clock.now():
        raise SessionRevoked()
    ensure_usable(account)  # a locked or closed account gets no new token
    return _mint_access(tokens, policy, account, sess)


def _new_refresh(session: Session, policy: SessionPolicy, sess: LoginSession) -> str:
    raw = "rt_" + random_token(32)
    now = clock.now()
    expires = min(now + timedelta(seconds=policy.refresh_ttl), sess.expires_at)
    session.add(
        RefreshToken(session_id=sess.id, token_hash=token_hash(raw), created_at=now, expires_at=expires)
    )
    return raw


def start_session(
    session: Session,
    *,
    tokens: TokenService,
    policy: SessionPolicy,
    account: Account,
    channel: str,
    device_label: str | None,
) -> TokenPair:
    """Open a session for `account` on `channel` and issue its first tokens. Commits."""
    ensure_usable(account)
    now = clock.now()
    sess = LoginSession(
        account_id=account.id,
        channel=channel,
        device_label=(device_label or None) and device_label[:64],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=policy.max_age),
    )
    session.add(sess)
    session.flush()
    refresh = _new_refresh(session, policy, sess)
    session.commit()
    access = _mint_access(tokens, policy, account, sess)
    return TokenPair(access, refresh, policy.access_ttl, sess.id, account.id)


def refresh(
    session: Session,
    *,
    tokens: TokenService,
    policy: SessionPolicy,
    revocations: RevocationList,
    refresh_token: str,
) -> TokenPair:
    """Rotate a refresh token. A token used twice ends its whole session."""
    now = clock.now()
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash(refresh_token)))
    if row is None:
        raise RefreshTokenInvalid()
    sess = session.get(LoginSession, row.session_id)
    if sess is None:  # the sweeper deleted the session (long ended) after the token was read
        raise RefreshTokenInvalid()
    if sess.revoked_at is not None:
        raise SessionRevoked()
    if row.rotated_at is not None:
        _revoke(session, revocations, sess, reason="refresh_reuse")
        session.commit()
        raise RefreshTokenReused()
    if row.expires_at <= now or sess.expires_at <= now:
        raise RefreshTokenInvalid()
    # Conditional update: of two concurrent uses exactly one rotates, the other is a reuse.
    claimed = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
    ).rowcount
    if claimed != 1:
        session.rollback()
        sess = session.get(LoginSession, row.session_id)
        if sess is None:
            raise RefreshTokenInvalid()
        _revoke(session, revocations, sess, reason="refresh_reuse")
        session.commit()
        raise RefreshTokenReused()
    account = session.get(Account, sess.account_id)
    assert account is not None
    ensure_usable(account)
    sess.last_seen_at = now
    new_refresh = _new_refresh(session, policy, sess)
    session.commit()
    return TokenPair(
        _mint_access(tokens, policy, account, sess), new_refresh, policy.access_ttl, sess.id, account.id
    )


def _revoke(session: Session, revocations: RevocationList, sess: LoginSession, *, reason: str) -> None:
    """Mark the session revoked; its Redis entry is written once the transaction commits.

    Writing Redis first would, if the commit then failed, lock the user out for the life of
    their access token while the database still calls the session open.
    """
    if sess.revoked_at is None:
        sess.revoked_at = clock.now()
        sess.revoke_reason = reason
    session.info.setdefault(_PENDING_REVOCATIONS, []).append((revocations, sess.id))


_PENDING_REVOCATIONS = "pending_revocations"


@event.listens_for(Session, "after_commit")
def _publish_revocations(session: Session) -> None:
    for revocations, session_id in session.info.pop(_PENDING_REVOCATIONS, ()):
        revocations.revoke(session_id)


@event.listens_for(Session, "after_rollback")
def _drop_revocations(session: Session) -> None:
    session.info.pop(_PENDING_REVOCATIONS, None)


def revoke_session(
    session: Session, *, revocations: RevocationList, account_id: str, session_id: str, reason: str
) -> None:
    """End one of the account's sessions (logout, or from the device list). Commits."""
    sess = session.get(LoginSession, session_id)
    if sess is None or sess.account_id != account_id:
        raise SessionNotFound()
    _revoke(session, revocations, sess, reason=reason)
    session.commit()


def revoke_all(
    session: Session, *, revocations: RevocationList, account_id: str, reason: str, keep: str | None = None
) -> int:
    """End every open session of an account (lock, delete, merge, password-equivalent change)
    and every token of the apps it authorised (docs/oauth.md, "When the account ends"): each open
    token family of its OAuth grants ends, refresh tokens included. The grants themselves end too
    when the account is closed (deleted, or merged into another: `reason` is then theirs); a
    locked account keeps them (the citizen's consent, still listed and withdrawable once it is
    unlocked; an app acts again only after the citizen signs in and consents on its page anew).
    Not committed; the Redis entries are written once the caller's transaction commits. Returns
    the number of login sessions ended. `keep`: a session that goes on (the caller's own, when
    the citizen made the change on it)."""
    stmt = select(LoginSession).where(
        LoginSession.account_id == account_id, LoginSession.revoked_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(LoginSession.id != keep)
    rows = session.scalars(stmt).all()
    for sess in rows:
        _revoke(session, revocations, sess, reason=reason)
    account = session.get(Account, account_id)
    closed = account is None or account.status == DELETED
    families = oauth_tokens.end_account_tokens(session, account_id, reason=reason, end_grants=closed)
    session.info.setdefault(_PENDING_REVOCATIONS, []).extend((revocations, fid) for fid in families)
    return len(rows)


# A session and its refresh tokens are deleted this long after it expired or was revoked (at
# least the access-token lifetime: the revocation list is rebuilt from `revoked_at` that long).
SESSION_RETENTION = timedelta(days=1)
PURGE_BATCH = 500  # sessions deleted in one transaction
PURGE_BATCHES = 20  # transactions at most in one sweeper pass; the rest waits for the next


def purge_ended_sessions(
    session: Session, *, access_ttl: int, batch: int = PURGE_BATCH, batches: int = PURGE_BATCHES
) -> dict[str, int]:
    """Delete the sessions that expired or were revoked more than SESSION_RETENTION ago, with
    all their refresh tokens, `batch` sessions per transaction, at most `batches` of them; each
    commits. What a refresh or the device list still reads is kept: a session not yet ended
    keeps every token, rotated ones included (a rotated token used again ends it), and an ended
    one can no longer be refreshed, listed or used (its access tokens died with it). An ended
    session stays ended, so nothing needs a lock. How many sessions and tokens went."""
    before = clock.now() - max(SESSION_RETENTION, timedelta(seconds=access_ttl + 60))
    ended = or_(LoginSession.revoked_at < before, LoginSession.expires_at < before)
    tokens = 0

    def purge(ids: list[str]) -> None:
        nonlocal tokens
        tokens += int(
            session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(ids))).rowcount or 0
        )
        session.execute(delete(LoginSession).where(LoginSession.id.in_(ids)))

    ended_ids = select(LoginSession.id).where(ended)
    sessions = in_batches(session, ended_ids, purge, batch=batch, batches=batches)
    return {"sessions": sessions, "tokens": tokens}


def list_sessions(session: Session, *, account_id: str) -> list[LoginSession]:
    """Open sessions of an account, most recently seen first. A session whose refresh token ran
    out (a device unused for REFRESH_TOKEN_TTL) can get no token again: it is not listed."""
    now = clock.now()
    live_refresh = (
        select(RefreshToken.id)
        .where(
            RefreshToken.session_id == LoginSession.id,
            RefreshToken.rotated_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .exists()
    )
    return list(
        session.scalars(
            select(LoginSession)
            .where(
                LoginSession.account_id == account_id,
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > now,
                live_refresh,
            )
            .order_by(LoginSession.last_seen_at.desc())
        )
    )


@dataclass
class Principal:
    """The authenticated citizen of a request."""

    account_id: str
    session_id: str
    channel: str
    identity_level: str
    claims: dict[str, Any]
    client_id: str | None = None  # a third-party app acting with the citizen's grant
    scopes: frozenset[str] = frozenset()  # what that grant allows (unused for first-party tokens)
    grant_id: str | None = None
    fetched: dict[str, bytes | None] = field(default_factory=dict)  # read with the token check

    @property
    def third_party(self) -> bool:
        return self.client_id is not None

    @property
    def owner(self) -> str:
        """Whose Idempotency-Keys a request uses (api/idempotency.py): the citizen's own apps
        share them; a third-party app has its own, so it can never be answered with what the
        citizen's app was answered (it would only need to guess a key and a body)."""
        return owner_of(self.account_id, self.client_id)


def owner_of(account_id: str, client_id: str | None) -> str:
    return account_id if client_id is None else f"{account_id}@{client_id}"


def authenticate(
    *,
    tokens: TokenService,
    revocations: RevocationList,
    audience: str,
    access_token: str,
    read: Callable[[str], list[str]] | None = None,
    alongside: Callable[[str], Alongside | None] | None = None,
) -> Principal:
    """Verify an access token and refuse tokens of revoked sessions. `read(account_id)` names
    Redis keys to fetch in the same round trip as the revocation check (Principal.fetched);
    `alongside(owner)` may give more commands for that trip (they run even when the token turns
    out revoked: their owner undoes what it must); `owner` is `Principal.owner`."""
    claims = tokens.verify(access_token, audience=audience)
    sid = claims.get("sid")
    typ = claims.get("typ")
    # The audience already separates citizens from operators; the type claim makes it hold
    # even if both audiences were configured alike.
    if not isinstance(sid, str) or typ not in ("citizen", "oauth"):
        raise TokenInvalid()
    jti = client_id = None
    if typ == "oauth":  # a convenience app with the citizen's grant (domain.oauth.tokens)
        client_id, scope = claims.get("client_id"), claims.get("scope")
        if not isinstance(client_id, str) or not isinstance(scope, str):
            raise TokenInvalid()
        jti = claims.get("jti")
    keys = read(claims["sub"]) if read is not None else []
    owner = owner_of(claims["sub"], client_id if typ == "oauth" else None)
    extra = alongside(owner) if alongside is not None else None
    revoked, fetched = revocations.is_revoked_reading(sid, jti, keys, extra)
    if revoked:
        raise SessionRevoked()
    if typ == "oauth":
        # A convenience app is a mobile app: catalog channel rules for "app" apply to it.
        return Principal(
            claims["sub"], sid, "app", claims.get("idl", "L1"), claims, client_id=client_id,
            scopes=frozenset(scope.split()), grant_id=claims.get("gid"), fetched=fetched,
        )  # fmt: skip
    return Principal(
        claims["sub"], sid, claims.get("channel", ""), claims.get("idl", "L1"), claims, fetched=fetched
    )
