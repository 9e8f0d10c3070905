"""bench.submit_cpu: the in-process CPU measurement of a submission runs end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_it_submits_the_drafts_and_reports_cpu_and_wall_time_per_submission():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (DATABASE_URL), as the benchmark does")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.submit_cpu", "--n", "60", "--warmup", "2", "--database-url", url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["submissions"] == 60
    # Wall time includes waiting for PostgreSQL; CPU time is this process's alone.
    assert 0 < result["cpu_ms_per_submission"] <= result["wall_ms_per_submission"] * 1.5
    # The database did the writes: its backends' CPU is counted beside ours (60 submissions
    # take several of its 10 ms clock ticks).
    assert result["postgresql_cpu_ms_per_submission"] > 0 and result["redis_cpu_ms_per_submission"] >= 0


def test_nonsense_counts_are_refused():
    proc = subprocess.run(
        [sys.executable, "-m", "bench.submit_cpu", "--n", "0"], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--n must be at least 1" in proc.stderr
