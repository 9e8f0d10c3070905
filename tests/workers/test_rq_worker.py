"""`python -m workers.rq_worker` stops quietly when Redis went away because it was told to stop."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from workers import rq_worker


class _Worker:
    """Works until a stop, then finds Redis gone when it records its end (as rq's does)."""

    def __init__(self, stop_requested: bool) -> None:
        self._stop_requested = False
        self._stop = stop_requested

    def work(self, **_kwargs: object) -> None:
        self._stop_requested = self._stop  # Ctrl-C: warm shutdown requested
        raise RedisConnectionError("Error 2 connecting to instance/redis.sock")


def test_a_stop_with_redis_already_gone_is_a_clean_exit():
    assert rq_worker.run(_Worker(stop_requested=True), burst=False, logging_level="INFO") == 0


def test_losing_redis_while_running_is_still_a_failure():
    with pytest.raises(RedisConnectionError):
        rq_worker.run(_Worker(stop_requested=False), burst=False, logging_level="INFO")
