"""The suite runs in several pytest-xdist processes: each flushes a Redis database of its own."""

from __future__ import annotations

import pytest

from tests.conftest import worker_redis_url


@pytest.mark.parametrize(
    "worker, url, expected",
    [
        ("gw0", "redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/15"),
        ("gw1", "redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/14"),
        ("gw3", "redis://:secret@10.0.0.5:6380/9", "redis://:secret@10.0.0.5:6380/6"),
        ("gw1", None, None),  # the embedded Redis lives in each process's own folder
    ],
)
def test_each_worker_gets_its_own_database(monkeypatch, worker, url, expected) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    assert worker_redis_url(url) == expected


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379"])
def test_a_database_a_second_worker_cannot_use_is_refused(monkeypatch, url) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    with pytest.raises(pytest.UsageError, match="database number"):
        worker_redis_url(url)


def test_one_process_keeps_the_configured_database(monkeypatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert worker_redis_url("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379"


def test_a_worker_started_in_place_of_a_crashed_one_gets_no_database(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    with pytest.raises(pytest.UsageError, match="gw2 of 2"):
        worker_redis_url("redis://127.0.0.1:6379/15")
