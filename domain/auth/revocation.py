"""Revoked sessions in Redis, so their access tokens stop working at once."""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from domain.auth.models import LoginSession


class RevocationList:
    """Session ids whose access tokens must be refused until those tokens expire."""

    def __init__(self, redis: Redis, *, access_ttl: int) -> None:
        self._redis = redis
        self._ttl = access_ttl + 60

    def revoke(self, session_id: str) -> None:
        self._redis.set(f"revoked:sid:{session_id}", "1", ex=self._ttl)

    def is_revoked(self, session_id: str) -> bool:
        return bool(self._redis.exists(f"revoked:sid:{session_id}"))

    def rebuild(self, session: Session) -> int:
        """Re-add recently revoked sessions (after Redis was flushed or replaced)."""
        since = clock.now() - timedelta(seconds=self._ttl)
        ids = session.scalars(select(LoginSession.id).where(LoginSession.revoked_at >= since)).all()
        if ids:
            pipe = self._redis.pipeline()
            for sid in ids:
                pipe.set(f"revoked:sid:{sid}", "1", ex=self._ttl)
            pipe.execute()
        return len(ids)
