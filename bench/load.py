"""Running wrk (and the verification driver) and reading their numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.infra import ROOT, BenchError

LUA_DIR = Path(__file__).resolve().parent / "lua"
_MARKER = "BENCH_JSON "


@dataclass
class LoadResult:
    """What one wrk run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int  # wrk counts every status >= 400 here
    socket_errors: int  # connect, read, write errors and timeouts
    tokens_used: int = 0
    tokens_exhausted: int = 0
    per_worker: list[int] = field(default_factory=list)  # requests each worker served
    statuses: dict[str, int] = field(default_factory=dict)  # HTTP status -> requests (access log)
    cpu_busy_pct: float = 0.0  # of all cores, during the load
    cpu_other_pct: float = 0.0  # of that, processes that are not part of the benchmark

    def as_dict(self) -> dict:
        """Plain dict for the JSON report."""
        return asdict(self)


def run_wrk(
    wrk: str,
    url: str,
    script: str,
    script_args: list[str],
    *,
    duration: int,
    connections: int,
    threads: int,
) -> LoadResult:
    """Run one wrk load (in its own process) and parse the JSON line the Lua done() prints."""
    cmd = [
        wrk, f"--threads={threads}", f"--connections={connections}", f"--duration={duration}s",
        "--timeout=5s", "--latency", f"--script={LUA_DIR / script}", url, "--", *script_args,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + 60} s for {url}") from exc
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(_MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk failed for {url} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    raw = json.loads(line[len(_MARKER) :])
    seconds = raw["duration_us"] / 1e6
    lat, err = raw["latency_us"], raw["errors"]
    return LoadResult(
        requests=raw["requests"],
        seconds=round(seconds, 2),
        rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        non_2xx=err["status"],
        socket_errors=err["connect"] + err["read"] + err["write"] + err["timeout"],
        tokens_used=raw["tokens_used"],
        tokens_exhausted=raw["tokens_exhausted"],
    )


def split_tokens(tokens: list[str], prefix: Path, threads: int) -> None:
    """Write tokens round-robin to PREFIX.0 … PREFIX.(threads-1), one wrk thread each."""
    for i in range(threads):
        path = Path(f"{prefix}.{i}")
        path.touch(mode=0o600)
        path.write_text("\n".join(tokens[i::threads]) + "\n")


def run_verifications(
    base_url: str, accounts_file: Path, *, method: str, workers: int, duration: int, env: dict[str, str]
) -> dict:
    """Run bench/identity_load.py (in its own process) and return the summary it prints."""
    cmd = [
        sys.executable, "-m", "bench.identity_load", base_url, str(accounts_file), f"--method={method}",
        f"--workers={workers}", f"--duration={duration}",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration + 90)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the verification driver did not finish within {duration + 90} s") from exc
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(_MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(
            f"the verification driver failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return json.loads(line[len(_MARKER) :])
