"""Nothing lost, nothing sent twice: submissions forwarded through a faulty province while the
workers are SIGKILLed and Redis is flushed (a small, time-bounded version of the benchmark's
10,000-case run in bench/forwarding_faults.py)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.redis import get_redis, resolve_url
from domain.applications.models import Application, ForwardingOutbox
from tests.forwarding.conftest import fresh, submitted

ROOT = Path(__file__).resolve().parents[2]
N = 24
DEADLINE = 120.0  # seconds for the faults and the drain together


def _profile_file(tmp_path: Path) -> Path:
    """The reference profile with short backoff, so a bounded test sees many retries."""
    raw = json.loads((ROOT / "config/province/reference.json").read_text(encoding="utf-8"))
    raw.update(backoff_base=0.2, backoff_cap=2.0, timeout=0.8, breaker_threshold=50, breaker_cooldown=1.0)
    path = tmp_path / "fault-profile.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


def _worker_env(app, tmp_path: Path) -> dict:
    cfg = app.config
    env = dict(os.environ)
    env.update(
        YIWANG_ENV="test", DATABASE_URL=cfg["DATABASE_URL"],
        REDIS_URL=resolve_url(cfg.get("REDIS_URL"), Path(cfg["INSTANCE_DIR"])),
        PROVINCE_BASE_URL=cfg["PROVINCE_BASE_URL"], PROVINCE_PROFILE=str(_profile_file(tmp_path)),
        FORWARDER_LEASE="3", FORWARDER_THREADS="4", LOG_LEVEL="ERROR",
        STORAGE_LOCAL_ROOT=cfg["STORAGE_LOCAL_ROOT"],
        YIWANG_INSTANCE_DIR=str(cfg["INSTANCE_DIR"]),
    )  # fmt: skip
    return env


def _start(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workers.forwarder"], cwd=ROOT, env=env)


@pytest.mark.timeout(240)
def test_every_submission_reaches_the_province_exactly_once_through_faults_and_kills(
    app, client, zhang, province, tmp_path
):
    cases = [submitted(client, zhang) for _ in range(N)]
    province.faults(
        error_rate=0.3, timeout_rate=0.1, timeout_seconds=1.2, reset_rate=0.05,
        duplicate_callbacks=0.3, reorder_callbacks=0.3, seed=7,
    )  # fmt: skip
    env = _worker_env(app, tmp_path)
    workers = [_start(env), _start(env)]
    rng = random.Random(11)
    started = time.monotonic()
    try:
        # Three times: kill a worker at a random moment and start a new one; flush Redis once.
        for round_ in range(3):
            time.sleep(rng.uniform(1.5, 3.0))
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            workers[victim] = _start(env)
            if round_ == 1:
                get_redis().flushdb()
        province.faults(error_rate=0, timeout_rate=0, reset_rate=0)

        def undelivered() -> int:
            return len(
                fresh()
                .scalars(select(ForwardingOutbox.id).where(ForwardingOutbox.state != "delivered"))
                .all()
            )

        while undelivered() and time.monotonic() - started < DEADLINE:
            time.sleep(0.5)
        assert undelivered() == 0, "rows still undelivered after the faults stopped"
        _check_the_province_and_the_cases(province, cases)
    finally:
        for w in workers:
            w.send_signal(signal.SIGKILL)
            w.wait()


def _check_the_province_and_the_cases(province, cases) -> None:
    stats = province.stats()
    assert stats["received"] == N, stats  # every accepted submission, once: 0 lost
    numbers = {c["case_number"] for c in cases}
    sim_cases = province.http.get(f"{province.url}/_sim/cases").json()
    assert numbers <= set(_case_numbers(sim_cases))

    # The province now moves every case; callbacks come twice and out of order.
    for i, c in enumerate(cases):
        if i % 3 == 0:
            province.post(f"cases/{c['case_number']}/accept")
        elif i % 3 == 1:
            province.post(f"cases/{c['case_number']}/refuse", {"reason": "不符合条件"})
    # The simulator's own record says where each case stands; yiwang must agree.
    stages = province.http.get(f"{province.url}/_sim/cases").json()["cases"]
    to_status = {"received": "received", "accepted": "accepted", "not_accepted": "not_accepted"}
    expected = {c["id"]: to_status[stages[c["case_number"]]["stage"]] for c in cases}
    assert sorted(expected.values()).count("accepted") == len(range(0, N, 3))

    def mismatched() -> dict:
        session = fresh()
        return {
            a.id: a.status
            for a in session.scalars(select(Application))
            if a.id in expected and a.status != expected[a.id]
        }

    deadline = time.monotonic() + 30
    while mismatched() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert mismatched() == {}


def _case_numbers(listing) -> list[str]:
    if isinstance(listing, dict):
        items = listing.get("cases", listing)
        return list(items.keys()) if isinstance(items, dict) else [c["sblsh"] for c in items]
    return [c["sblsh"] for c in listing]
