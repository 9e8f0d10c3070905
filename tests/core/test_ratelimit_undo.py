"""Giving an attempt back never turns the caller's answer into a 500 when Redis fails."""

from __future__ import annotations

import logging

from redis import ConnectionError as RedisConnectionError

from core.ratelimit import RateLimiter
from core.redis import redis_holder


def _limiter() -> RateLimiter:
    return RateLimiter(redis_holder.get(), prefix="rl-undo-test")


def test_undo_forgets_one_counted_event(app):
    limiter = _limiter()
    limiter.reset("x", "a")
    first = limiter.hit("x", "a", limit=1, window=60)
    limiter.undo("x", "a", first)
    limiter.hit("x", "a", limit=1, window=60)  # room again: the first was given back
    limiter.reset("x", "a")


def test_undo_with_redis_down_is_logged_not_raised(app, monkeypatch, caplog):
    limiter = _limiter()

    def down(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr(limiter._redis, "zrem", down)
    with caplog.at_level(logging.WARNING, logger="core.ratelimit"):
        limiter.undo("account-closure", "acc-1", "member")
    assert [r.getMessage() for r in caplog.records] == ["counted event not undone"]
    # The account is not in the line, nor in its fields (the JSON log writes every one).
    assert all("acc-1" not in str(value) for r in caplog.records for value in vars(r).values())
