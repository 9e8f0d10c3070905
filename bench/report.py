"""Machine facts and the docs/benchmarks.md report."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.infra import ROOT

# Issue acceptance: GET /v1/me with an ES256 token at >= 0.35x bare-Flask rps with p99 < 50 ms at
# 32 connections, and gunicorn worker RSS < 150 MB.
MIN_RATIO = 0.35
MAX_P99_MS = 50.0
MAX_RSS_MB = 150.0
MB = 1_000_000  # decimal megabytes: the stricter reading of "150 MB"
CONCENTRATED = 0.6  # busiest worker's share of a scenario's requests worth a warning


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def machine_facts(wrk: str) -> dict:
    """Where the numbers were measured."""
    import gunicorn

    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "wrk": _version([wrk, "--version"]).split(" [")[0],
        "git": commit + (" (uncommitted changes)" if dirty not in ("", "unknown") else ""),
    }


def acceptance(results: dict, rss: dict) -> dict:
    """The issue's acceptance line, computed from this run."""
    me, bare = results["me"], results["bare"]
    ratio = me["rps"] / bare["rps"] if bare["rps"] else 0.0
    checks = {
        "ratio": {"value": round(ratio, 3), "limit": MIN_RATIO, "ok": ratio >= MIN_RATIO},
        "p99_ms": {"value": me["p99_ms"], "limit": MAX_P99_MS, "ok": me["p99_ms"] < MAX_P99_MS},
        "rss_mb": {"value": rss["peak_mb"], "limit": MAX_RSS_MB, "ok": rss["peak_mb"] < MAX_RSS_MB},
        # A fast run of 401s is not a pass.
        "errors": {"value": me["non_2xx"] + me["socket_errors"], "limit": 0,
                   "ok": me["non_2xx"] + me["socket_errors"] == 0},
    }  # fmt: skip
    return {"checks": checks, "passed": all(c["ok"] for c in checks.values())}


def concentration(per_worker: list[int]) -> float:
    """Share of the requests the busiest worker served (0 when only one worker exists)."""
    total = sum(per_worker)
    return max(per_worker) / total if len(per_worker) > 1 and total else 0.0


def _ms(value: float) -> str:
    return f"{value:.2f}"


def render(data: dict) -> str:
    """The Markdown report, raw numbers included as JSON at the end."""
    m, cfg, results, rss, acc = (
        data["machine"],
        data["config"],
        data["results"],
        data["rss"],
        data["acceptance"],
    )
    c = acc["checks"]
    verdict = "PASS" if acc["passed"] else "FAIL"
    mark = {True: "pass", False: "**fail**"}
    bare_rps = results["bare"]["rps"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m bench.run`) on {m['date']}; rerun it rather than editing"
        " this file. Every figure below comes from that one run on one machine.",
        "",
        "## Acceptance",
        "",
        "> `GET /v1/me` with an ES256 token at ≥ 0.35× the bare-Flask rps of the same run with"
        " p99 < 50 ms at 32 connections, and gunicorn worker RSS < 150 MB",
        "",
        f"**{verdict}** at {cfg['connections']} connections:",
        "",
        f"- rps ratio {c['ratio']['value']:.3f}× (≥ {MIN_RATIO}): {mark[c['ratio']['ok']]}",
        f"- p99 {_ms(c['p99_ms']['value'])} ms (< {MAX_P99_MS:.0f} ms): {mark[c['p99_ms']['ok']]}",
        f"- peak worker RSS {c['rss_mb']['value']:.1f} MB (< {MAX_RSS_MB:.0f} MB): {mark[c['rss_mb']['ok']]}",
        f"- errors and non-2xx responses: {c['errors']['value']}: {mark[c['errors']['ok']]}",
        "",
        "## Results",
        "",
        "| scenario | request | rps | × bare | p50 ms | p90 ms | p99 ms | max ms | requests | non-2xx"
        " | socket errors | requests per worker | CPU busy % | not ours % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--|--:|--:|",
    ]
    for r in results.values():
        ratio = r["rps"] / bare_rps if bare_rps else 0.0
        split = "/".join(str(n) for n in r["per_worker"]) or "n/a"
        lines.append(
            f"| {r['label']} | `{r['request']}` | {r['rps']:.0f} | {ratio:.3f} | {_ms(r['p50_ms'])} "
            f"| {_ms(r['p90_ms'])} | {_ms(r['p99_ms'])} | {_ms(r['max_ms'])} | {r['requests']} "
            f"| {r['non_2xx']} | {r['socket_errors']} | {split} | {r['cpu_busy_pct']} "
            f"| {r['cpu_other_pct']} |"
        )
    lines += [
        "",
        "Requests per worker: a gthread worker keeps every keep-alive connection it accepted. wrk"
        " opens all its connections at once, and on a machine with few cores the first worker to"
        " wake can accept most of them, leaving the others idle. CPU busy: share of all cores in"
        " use during the scenario; not ours: the part used by processes outside the benchmark"
        " (gunicorn, our Redis, our database's PostgreSQL backends and wrk count as ours), i.e."
        f" other work competing for the CPUs. Load average before the run: {data['loadavg_before'][0]}.",
    ]
    for r in results.values():
        share = concentration(r["per_worker"])
        if share > CONCENTRATED:
            lines.append(
                f"\n**Note:** in *{r['label']}* one worker served {share:.0%} of the requests, so"
                " that scenario ran on about one core's worth of Python; rerun before comparing it."
            )
    refresh = results.get("refresh")
    lines += [
        "",
        "## Memory",
        "",
        f"yiwang gunicorn workers ({rss['workers']}): RSS after the load max {rss['after_max_mb']:.1f} MB,"
        f" mean {rss['after_mean_mb']:.1f} MB; peak of any worker sampled every 0.5 s during the"
        f" yiwang scenarios {rss['peak_mb']:.1f} MB. Master {rss['master_mb']:.1f} MB."
        " RSS counts pages shared with other processes (libraries), so the sum over workers"
        " overstates the memory they use together.",
        "",
        "## Machine and setup",
        "",
        f"- Machine: {m['cpu']}, {m['cores_usable']} usable cores ({m['cores_logical']} logical),"
        f" {m['ram_gb']} GiB RAM, {m['os']}; Python {m['python']}, gunicorn {m['gunicorn']},"
        f" {m['wrk']}, PostgreSQL {m['postgresql']}, Redis {m['redis']}; commit {m['git']}.",
        f"- gunicorn (`gunicorn.conf.py`, the same file for both servers): {cfg['workers']} workers,"
        f" worker class {cfg['worker_class']}, {cfg['threads']} threads, keepalive {cfg['keepalive']} s,"
        f" max_requests {cfg['max_requests']} ± {cfg['max_requests_jitter']}, preload_app"
        f" {cfg['preload_app']}, JSON access log {'on' if cfg['accesslog'] else 'off'}.",
        f"- Load: wrk, {cfg['connections']} connections on {cfg['wrk_threads']} threads, {cfg['duration']} s"
        f" per scenario after a {cfg['warmup']} s warm-up, one scenario at a time, keep-alive connections.",
        "- yiwang runs with `YIWANG_ENV=production` and freshly generated secrets, against a fresh"
        " PostgreSQL database built by the Alembic migrations and a Redis database of its own;"
        " the app writes its JSON request log as in production.",
        "- wrk, gunicorn, PostgreSQL and Redis share the machine, so each takes CPU from the"
        " others; the bare-Flask ratio is the figure to compare between machines.",
        "- `/v1/me` sends the same ES256 access token on every request: each request verifies the"
        " signature, checks the session's revocation in Redis and reads the account from PostgreSQL.",
        "- `/v1/auth/refresh` sends a different, never-used refresh token on every request (each"
        " in its own session, bulk-inserted before the run), so every request rotates a token and"
        " mints a new ES256 access token. Each request carries its own client address in"
        " `X-Forwarded-For` (the server trusts one proxy hop for the run), as phones behind the"
        " load balancer would; otherwise the per-address rate limit (600/min) would answer most"
        " requests with 429.",
    ]
    if refresh:
        lines.append(
            f"- Refresh tokens used: {refresh['tokens_used']}; requests that found the token supply"
            f" exhausted: {refresh['tokens_exhausted']} (must be 0 for a valid run)."
        )
    lines.append(
        f"- yiwang worker restarts during the run (max_requests or crashes): {data['worker_restarts']};"
        f" tracebacks in its log: {data['server_errors']}."
    )
    lines += ["", "## Raw numbers", "", "```json", json.dumps(data, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(lines)
