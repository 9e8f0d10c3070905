"""Revoked sessions in Redis, so their access tokens stop working at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.audit import AuditEvent
from core.redis import Batch
from domain.auth.models import LoginSession
from domain.oauth.models import OAuthTokenFamily


class Alongside(Protocol):
    """Redis commands that ride along with a token check's round trip."""

    def stage(self, pipe: Any) -> None:
        """Add the commands to the pipeline."""

    def take(self, results: list[Any]) -> None:
        """Receive their results, in order."""


# The audit action of one access token revoked at /oauth/revoke (target: its jti; details: its
# exp): the revocation's record in the database, which `rebuild` restores to Redis.
ACCESS_TOKEN_REVOKED = "oauth.access_token_revoked"


class RevocationList:
    """Session ids (and OAuth token families, and single OAuth access tokens) whose access tokens
    must be refused until those tokens expire."""

    def __init__(self, redis: Redis, *, access_ttl: int) -> None:
        self._redis = redis
        self._ttl = access_ttl + 60

    def revoke(self, session_id: str) -> None:
        self._redis.set(f"revoked:sid:{session_id}", "1", ex=self._ttl)

    def is_revoked(self, session_id: str, jti: str | None = None) -> bool:
        """Whether the session (or OAuth token family) is revoked, or this one token (`jti`)."""
        if jti is None:
            return bool(self._redis.exists(f"revoked:sid:{session_id}"))
        return bool(self._redis.exists(f"revoked:sid:{session_id}", f"revoked:jti:{jti}"))

    def is_revoked_reading(
        self, session_id: str, jti: str | None, keys: list[str], alongside: Alongside | None = None
    ) -> tuple[bool, dict[str, bytes | None]]:
        """`is_revoked`, and the values of `keys` read in the same round trip (a request's token
        check and its view's cached data cost one trip to Redis, not two). `alongside` adds its
        own commands to that trip and receives their results."""
        if not keys and alongside is None:
            return self.is_revoked(session_id, jti), {}
        names = [f"revoked:sid:{session_id}"] + ([f"revoked:jti:{jti}"] if jti is not None else [])
        pipe = Batch(self._redis)
        pipe.exists(*names)
        for key in keys:
            pipe.get(key)
        if alongside is not None:
            alongside.stage(pipe)
        revoked, *values = pipe.execute()
        if alongside is not None:
            alongside.take(values[len(keys) :])
        return bool(revoked), dict(zip(keys, values[: len(keys)], strict=True))

    def token_revoked(self, jti: str) -> bool:
        """Whether this one access token was revoked (tokens without a session or family)."""
        return bool(self._redis.exists(f"revoked:jti:{jti}"))

    def revoke_token(self, jti: str, *, expires_at: float) -> None:
        """Refuse one access token (RFC 7009) until it would have expired anyway. The caller
        records ACCESS_TOKEN_REVOKED in the audit trail too: `rebuild` reads it back."""
        ttl = max(1, int(expires_at - clock.timestamp()) + 60)
        self._redis.set(f"revoked:jti:{jti}", "1", ex=ttl)

    def rebuild(self, session: Session) -> int:
        """Re-add recently revoked sessions and single access tokens still unexpired (after Redis
        was flushed or replaced)."""
        now = clock.now()
        since = now - timedelta(seconds=self._ttl)
        ids = list(session.scalars(select(LoginSession.id).where(LoginSession.revoked_at >= since)))
        ids += session.scalars(select(OAuthTokenFamily.id).where(OAuthTokenFamily.revoked_at >= since))
        tokens = [
            (jti, float((details or {}).get("exp") or 0))
            for jti, details in session.execute(
                select(AuditEvent.target_id, AuditEvent.details).where(
                    AuditEvent.action == ACCESS_TOKEN_REVOKED, AuditEvent.at >= since
                )
            )
        ]
        tokens = [(jti, exp) for jti, exp in tokens if jti and exp > now.timestamp()]
        if ids or tokens:
            pipe = self._redis.pipeline()
            for sid in ids:
                pipe.set(f"revoked:sid:{sid}", "1", ex=self._ttl)
            for jti, exp in tokens:
                pipe.set(f"revoked:jti:{jti}", "1", ex=max(1, int(exp - now.timestamp()) + 60))
            pipe.execute()
        return len(ids) + len(tokens)
