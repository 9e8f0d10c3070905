"""The shared throttles in Redis: token bucket, lease semaphore, circuit breaker."""

from __future__ import annotations

import time

from core.redis import get_redis
from core.throttle import CircuitBreaker, LeaseSemaphore, TokenBucket


def test_the_bucket_gives_its_burst_then_paces_at_the_rate(app):
    bucket = TokenBucket(get_redis(), "t:bucket", rate=50.0, burst=3)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take()
    assert 0.0 < wait <= 0.02 + 1e-6  # one token every 20 ms
    time.sleep(0.05)
    assert bucket.take() == 0.0


def test_two_processes_share_one_bucket(app):
    a = TokenBucket(get_redis(), "t:shared", rate=1.0, burst=2)
    b = TokenBucket(get_redis(), "t:shared", rate=1.0, burst=2)
    assert a.take() == 0.0 and b.take() == 0.0
    assert a.take() > 0 and b.take() > 0


def test_the_semaphore_caps_holders_and_a_dead_holder_frees_its_place(app):
    sem = LeaseSemaphore(get_redis(), "t:sem", cap=2, lease=0.2)
    first, second = sem.acquire(), sem.acquire()
    assert first and second and sem.acquire() is None and sem.holders() == 2
    sem.release(first)
    third = sem.acquire()
    assert third is not None
    time.sleep(0.25)  # both holders "died": their leases ran out
    assert sem.holders() == 0 and sem.acquire() is not None


def test_the_breaker_opens_lets_one_probe_through_and_closes_on_success(app):
    breaker = CircuitBreaker(get_redis(), "t:breaker", threshold=3, cooldown=0.2)
    assert breaker.allow()
    assert [breaker.failure() for _ in range(3)] == [False, False, True]
    assert not breaker.allow() and breaker.state()["state"] == "open"
    time.sleep(0.25)
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one
    assert breaker.failure() is True  # the probe failed: open again
    assert not breaker.allow()
    time.sleep(0.25)
    assert breaker.allow()
    breaker.success()
    assert breaker.allow() and breaker.allow() and breaker.state()["state"] == "closed"


def test_a_success_between_failures_resets_the_count(app):
    breaker = CircuitBreaker(get_redis(), "t:breaker2", threshold=2, cooldown=5)
    breaker.failure()
    breaker.success()
    assert breaker.failure() is False and breaker.allow()
