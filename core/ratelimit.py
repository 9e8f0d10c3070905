"""Sliding-window rate limits in Redis, driven by core.clock so tests can move time."""

from __future__ import annotations

import logging
import math
import uuid

from redis import Redis, RedisError

from core import clock
from core.errors import RateLimited

# KEYS[1] = zset; ARGV = now, window, limit, member, ttl
_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tostring(tonumber(oldest[2]) + window - now)}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('EXPIRE', key, tonumber(ARGV[5]))
return {1, '0'}
"""

# KEYS[1] = claim; ARGV[1] = its owner's token. Deletes the claim only while it is the owner's
# (not a later request's, taken after this one's expired).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

log = logging.getLogger(__name__)


class RateLimiter:
    """`hit(name, ident, limit, window)` records one event or raises RateLimited."""

    def __init__(self, redis: Redis, prefix: str = "rl") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SCRIPT)
        self._release = redis.register_script(_RELEASE)

    def hit(self, name: str, ident: str, *, limit: int, window: int) -> str:
        """Count one event for (name, ident); raise RateLimited with Retry-After when over.

        Returns the event's id, which `undo` takes back (an attempt that never reached a
        paid provider because the provider was down should not use up the citizen's quota).
        """
        now = clock.timestamp()
        key = f"{self._prefix}:{name}:{ident}"
        member = uuid.uuid4().hex
        allowed, wait = self._script(keys=[key], args=[now, window, limit, member, window + 60])
        if not int(allowed):
            raise RateLimited(retry_after=math.ceil(float(wait)), scope=name)
        return member

    def check(self, name: str, ident: str, *, limit: int, window: int) -> None:
        """Raise RateLimited if (name, ident) already holds `limit` events; count nothing.

        With `record`, for events known only afterwards (a failed attempt): requests in flight
        at once are not counted against each other."""
        now = clock.timestamp()
        key = f"{self._prefix}:{name}:{ident}"
        pipe = self._redis.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", now - window)
        pipe.zrange(key, -limit, -limit, withscores=True)
        _, oldest_kept = pipe.execute()
        if oldest_kept:  # the limit-th newest event is still inside the window
            raise RateLimited(retry_after=math.ceil(oldest_kept[0][1] + window - now), scope=name)

    def record(self, name: str, ident: str, *, window: int) -> None:
        """Count one event for (name, ident) without checking a limit (see `check`)."""
        key = f"{self._prefix}:{name}:{ident}"
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(key, {uuid.uuid4().hex: clock.timestamp()})
        pipe.expire(key, window + 60)
        pipe.execute()

    def undo(self, name: str, ident: str, member: str) -> None:
        """Forget one counted event. A Redis failure here is logged, not raised: the event then
        stays counted until the window passes, and the caller's own answer (a refusal it is
        giving the attempt back for) still reaches the client instead of a 500."""
        try:
            self._redis.zrem(f"{self._prefix}:{name}:{ident}", member)
        except RedisError as exc:
            log.warning("counted event not undone", extra={"limit": name, "error": type(exc).__name__})

    def reset(self, name: str, ident: str) -> None:
        self._redis.delete(f"{self._prefix}:{name}:{ident}")

    def reset_all(self, name: str, ident_prefix: str) -> None:
        """Forget every counter of `name` whose ident starts with `ident_prefix`."""
        keys = list(self._redis.scan_iter(match=f"{self._prefix}:{name}:{ident_prefix}*", count=500))
        if keys:
            self._redis.delete(*keys)

    def claim(self, name: str, ident: str, *, ttl: int) -> str | None:
        """Mark (name, ident) as in flight for at most `ttl` seconds (SET NX EX): the token
        `release` takes, or None when it already is. A claim whose holder died ends with `ttl`."""
        token = uuid.uuid4().hex
        if self._redis.set(f"{self._prefix}:{name}:{ident}", token, nx=True, ex=ttl):
            return token
        return None

    def release(self, name: str, ident: str, token: str) -> None:
        """End the claim `token` holds, if it still does (compare and delete in one script). A
        Redis failure here is logged, not raised: the claim then ends with its ttl."""
        try:
            self._release(keys=[f"{self._prefix}:{name}:{ident}"], args=[token])
        except RedisError as exc:
            log.warning("claim not released", extra={"claim": name, "error": type(exc).__name__})
