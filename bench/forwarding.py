"""`python -m bench.forwarding`: forwarding to the province under load and under faults.

Three scenarios against a throwaway PostgreSQL database, a private Redis, the province simulator
(`cli.simulators province`), gunicorn (gunicorn.conf.py) for yiwang and for the bare Flask
baseline, and forwarder processes (`python -m workers.forwarder`), all with production settings:

- throughput: M submitted applications waiting; the simulator allows 200 requests/s (429
  beyond); 2 forwarders deliver them while the simulator calls yiwang back for each receipt.
  Delivered per second over the middle 80 % of the deliveries, as a share of the limit.
- callback: wrk POSTs distinct pre-signed stage events to /v1/platform/callbacks (forwarders
  stopped, so the endpoint is measured alone), against wrk on the bare Flask app in the same run.
- faults: N submissions while the simulator answers 503 to 30 % of calls, times out 10 % (the
  client gives up after 1 s), resets 5 %, and sends callbacks twice or out of order; the
  forwarders are SIGKILLed and restarted three times and Redis is flushed once. When every row
  is delivered the province moves every case (accept a third, refuse a third) and yiwang must
  end where the simulator's record says.

Submitted applications are made in bulk: complete drafts from bench.applications_data (real
prefill, encrypted data, reused materials), then marked submitted with a case number and a
forwarding row each, as a submission writes them. Writes docs/benchmarks-forwarding.md; exit 0
when every acceptance passes, 1 when one fails, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.environment import plain_env, production_env
from bench.infra import (
    ROOT,
    BenchDatabase,
    BenchError,
    Gunicorn,
    ManagedProcess,
    PrivateRedis,
    Simulator,
    ensure_wrk,
    free_port,
    stop_all,
    write_report,
)
from bench.load import run_wrk
from bench.verification import SIMULATORS

RESULTS = ROOT / "docs" / "benchmarks-forwarding.md"
RATE_LIMIT = 200.0
MIN_SHARE = 0.9
MIN_CALLBACK_RATIO = 0.3


def _psql(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def submitted(env: dict[str, str], work: Path, count: int, tag: str) -> list[str]:
    """`count` complete drafts made into submitted cases with a pending forwarding row each."""
    setup = work / "apps-setup.json"
    if not setup.exists():
        _run(env, "bench.applications_data", "setup", str(setup), "4", "0")
    prefix = work / f"drafts-{tag}"
    _run(env, "bench.applications_data", "drafts", str(setup), str(prefix), str(count), "1")
    ids = [line.split()[0] for line in (prefix.parent / f"{prefix.name}.0").read_text().splitlines() if line]
    numbers = [f"BENCH{tag.upper()}{i:010d}" for i in range(len(ids))]
    with _psql(env["DATABASE_URL"]) as conn:
        conn.execute(
            "UPDATE applications a SET status = 'submitted', submission_version = 1, case_number = v.cn,"
            " submitted_at = now(), updated_at = now(), expires_at = NULL"
            " FROM unnest(%s::text[], %s::text[]) AS v(id, cn) WHERE a.id = v.id",
            (ids, numbers),
        )
        conn.execute(
            "INSERT INTO forwarding_outbox (id, application_id, kind, submission_version, case_number,"
            " profile, state, attempts, created_at, next_attempt_at)"
            " SELECT gen_random_uuid()::text, id, 'submit', 1, case_number, 'reference', 'pending', 0,"
            " now(), now() FROM applications WHERE id = ANY(%s)",
            (ids,),
        )
    return numbers


def _run(env: dict[str, str], module: str, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise BenchError(f"{module} {args[0]} failed:\n{proc.stderr[-3000:]}")


def forwarders(env: dict[str, str], work: Path, count: int = 2, tag: str = "fw") -> list[ManagedProcess]:
    cmd = [sys.executable, "-m", "workers.forwarder"]
    return [ManagedProcess(f"{tag}-{i}-{time.monotonic_ns()}", cmd, env, work) for i in range(count)]


def _stop(procs: list[ManagedProcess]) -> None:
    for p in procs:
        p.stop(grace=5)


def _delivered(url: str, numbers: list[str]) -> list[float]:
    with _psql(url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM delivered_at) FROM forwarding_outbox"
            " WHERE state = 'delivered' AND case_number = ANY(%s) ORDER BY delivered_at",
            (numbers,),
        ).fetchall()
    return [float(r[0]) for r in rows]


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.5)


def throughput(env: dict[str, str], work: Path, sim: Simulator, rows: int) -> dict:
    numbers = submitted(env, work, rows, "t")
    sim.control("/_sim/reset", {})
    procs = forwarders(env, work)
    started = time.monotonic()
    try:
        _wait(
            lambda: len(_delivered(env["DATABASE_URL"], numbers)) == rows, rows / 50 + 120, "the deliveries"
        )
    finally:
        _stop(procs)
    times = _delivered(env["DATABASE_URL"], numbers)
    lo, hi = times[int(len(times) * 0.1)], times[int(len(times) * 0.9) - 1]
    middle = int(len(times) * 0.9) - int(len(times) * 0.1)
    rate = middle / (hi - lo) if hi > lo else 0.0
    stats = _sim_stats(sim)
    return {
        "rows": rows, "wall_seconds": round(time.monotonic() - started, 1),
        "delivered_per_second": round(rate, 1), "limit": RATE_LIMIT, "share": round(rate / RATE_LIMIT, 3),
        "province_received": stats["received"], "duplicates": stats["duplicates"],
        "answered_429": stats["by_status"].get("429", 0), "pass": rate >= MIN_SHARE * RATE_LIMIT,
    }  # fmt: skip


def _sim_stats(sim: Simulator) -> dict:
    import urllib.request

    with urllib.request.urlopen(sim.base_url + "/_sim/stats", timeout=10) as resp:
        return json.loads(resp.read())


def _signed_events(env: dict[str, str], numbers: list[str], prefix: Path, threads: int) -> int:
    """Lines for callback.lua: every case's next three stages, each signed once."""
    from integrations.province import signing

    creds = signing.Credentials(
        alg=signing.ALG_HMAC, app_id=env.get("PROVINCE_APP_ID", "yiwang-sim"), secret=env["PROVINCE_SECRET"]
    )
    files = [open(f"{prefix}.{i}", "w", encoding="utf-8") for i in range(threads)]
    count = 0
    try:
        for seq, stage, extra in (
            (2, "accepted", {"code": "1"}),
            (3, "in_review", {}),
            (4, "completed", {"result_code": "6"}),
        ):
            for sblsh in numbers:
                event = {
                    "event_id": f"EV{secrets.token_hex(10)}",
                    "sblsh": sblsh,
                    "seq": seq,
                    "stage": stage,
                    **extra,
                }
                body = json.dumps(event, separators=(",", ":")).encode()
                h = signing.sign_request(creds, "POST", "/v1/platform/callbacks", body)
                parts = (h[signing.H_TIMESTAMP], h[signing.H_NONCE], h[signing.H_SIGNATURE], body.decode())
                line = "\t".join(parts) + "\n"
                files[count % threads].write(line)
                count += 1
    finally:
        for f in files:
            f.close()
    return count


def callback(env: dict[str, str], work: Path, wrk: str, numbers: list[str], args: argparse.Namespace) -> dict:
    bare = Gunicorn("bare", "bench.bare_app:app", plain_env(), work, "/json")
    yiwang = Gunicorn("yiwang-cb", "wsgi:app", env, work, "/v1/ready")
    try:
        base = run_wrk(wrk, bare.base_url + "/json", "get.lua", [], duration=args.duration,
                       connections=args.connections, threads=args.threads)  # fmt: skip
        prefix = work / "callbacks"
        events = _signed_events(env, numbers, prefix, args.threads)
        ours = run_wrk(
            wrk, yiwang.base_url + "/v1/platform/callbacks", "callback.lua",
            [str(prefix), env.get("PROVINCE_APP_ID", "yiwang-sim"), "SM3-HMAC"],
            duration=args.duration, connections=args.connections, threads=args.threads,
        )  # fmt: skip
        statuses = yiwang.status_counts(0)
    finally:
        yiwang.stop()
        bare.stop()
    ratio = ours.rps / base.rps if base.rps else 0.0
    return {
        "bare_rps": base.rps, "bare_p99_ms": base.p99_ms, "rps": ours.rps, "p99_ms": ours.p99_ms,
        "ratio": round(ratio, 3), "events_prepared": events, "statuses": statuses,
        "exhausted": ours.tokens_exhausted,
        "pass": ratio >= MIN_CALLBACK_RATIO and ours.tokens_exhausted == 0,
    }  # fmt: skip


def faults(env: dict[str, str], work: Path, sim: Simulator, redis_url: str, n: int) -> dict:
    import redis

    numbers = submitted(env, work, n, "f")
    sim.control("/_sim/reset", {})
    sim.control("/_sim/faults", {
        "error_rate": 0.3, "timeout_rate": 0.1, "timeout_seconds": 1.5, "reset_rate": 0.05,
        "duplicate_callbacks": 0.3, "reorder_callbacks": 0.3, "seed": 2026,
    })  # fmt: skip
    fault_env = env | {"PROVINCE_TIMEOUT": "1", "FORWARDER_LEASE": "5"}
    rng = random.Random(7)
    procs = forwarders(fault_env, work, tag="ff")
    started = time.monotonic()
    kills = 0
    try:
        # Faults stay on until half the rows are through (at most 10 minutes); three kills and
        # the flush fall inside that time.
        half = n // 2
        for round_ in range(3):
            target = half * (round_ + 1) // 4
            deadline = time.monotonic() + 200
            while len(_delivered(env["DATABASE_URL"], numbers)) < target and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.5, 2.0))
            victim = rng.randrange(len(procs))
            procs[victim].proc.send_signal(signal.SIGKILL)
            procs[victim].proc.wait()
            kills += 1
            procs[victim] = forwarders(fault_env, work, 1, tag="ff")[0]
            if round_ == 1:
                redis.Redis.from_url(redis_url).flushdb()
        _wait(
            lambda: len(_delivered(env["DATABASE_URL"], numbers)) >= half, 600, "half the rows under faults"
        )
        faulty_seconds = round(time.monotonic() - started, 1)
        sim.control("/_sim/faults", {"error_rate": 0, "timeout_rate": 0, "reset_rate": 0})
        _wait(lambda: len(_delivered(env["DATABASE_URL"], numbers)) == n, n / 20 + 300, "every row delivered")
        drained = round(time.monotonic() - started, 1)
        stats = _sim_stats(sim)
        for i, sblsh in enumerate(numbers):
            if i % 3 == 0:
                sim.control(f"/_sim/cases/{sblsh}/accept", {})
            elif i % 3 == 1:
                sim.control(f"/_sim/cases/{sblsh}/refuse", {"reason": "不符合受理条件"})
        mismatches = _mismatches(env["DATABASE_URL"], sim, numbers, timeout=300)
        callbacks = _sim_stats(sim)["callbacks"]
    finally:
        _stop(procs)
    lost = n - stats["received"]
    return {
        "n": n, "kills": kills, "redis_flushes": 1, "faulty_seconds": faulty_seconds,
        "drained_seconds": drained, "province_received": stats["received"], "province_cases": stats["cases"],
        "duplicates_absorbed": stats["duplicates"], "lost": lost, "resets": stats["resets"],
        "timeouts": stats["timeouts"], "answered_503": stats["by_status"].get("503", 0),
        "mismatches": len(mismatches), "mismatch_examples": mismatches[:5], "callbacks": callbacks,
        "pass": lost == 0 and stats["cases"] == n and not mismatches,
    }  # fmt: skip


def _mismatches(url: str, sim: Simulator, numbers: list[str], timeout: float) -> list[tuple]:
    import urllib.request

    with urllib.request.urlopen(sim.base_url + "/_sim/cases", timeout=30) as resp:
        stages = json.loads(resp.read())["cases"]
    want = {
        s: {"received": "received", "accepted": "accepted", "not_accepted": "not_accepted"}[
            stages[s]["stage"]
        ]
        for s in numbers
    }
    deadline = time.monotonic() + timeout
    while True:
        with _psql(url) as conn:
            rows = conn.execute(
                "SELECT case_number, status FROM applications WHERE case_number = ANY(%s)", (numbers,)
            ).fetchall()
        wrong = [(c, s, want[c]) for c, s in rows if want[c] != s]
        if not wrong or time.monotonic() > deadline:
            return wrong
        time.sleep(1)


def _retire(url: str, pattern: str) -> None:
    """Take the callback scenario's cases out of the later runs (rows and kept events)."""
    with _psql(url) as conn:
        conn.execute(
            "UPDATE forwarding_outbox SET state = 'delivered', delivered_at = now()"
            " WHERE case_number LIKE %s",
            (pattern,),
        )
        conn.execute(
            "DELETE FROM province_events WHERE application_id IN"
            " (SELECT id FROM applications WHERE case_number LIKE %s)",
            (pattern,),
        )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def render(facts: dict, results: dict) -> str:
    t, c, f = results.get("throughput"), results.get("callback"), results.get("faults")
    out = [
        "# Forwarding benchmarks",
        "",
        f"Run {facts['when']} on {facts['machine']}: `python -m bench.forwarding`.",
        "",
    ]
    if t:
        out += [
            "## Throughput with 2 forwarders against a 200/s province", "",
            f"- {t['rows']} submissions; delivered **{t['delivered_per_second']}/s** in the steady state",
            f"  = **{t['share']:.0%}** of the limit (acceptance ≥ {MIN_SHARE:.0%}): {_verdict(t['pass'])}",
            f"- province received {t['province_received']}, duplicates {t['duplicates']},",
            f"  429 answers {t['answered_429']}, wall {t['wall_seconds']} s", "",
        ]  # fmt: skip
    if c:
        out += [
            "## Callback endpoint", "",
            f"- bare Flask {c['bare_rps']} rps (p99 {c['bare_p99_ms']} ms)",
            f"- POST /v1/platform/callbacks {c['rps']} rps (p99 {c['p99_ms']} ms) = **{c['ratio']}×** bare",
            f"  (acceptance ≥ {MIN_CALLBACK_RATIO}×): {_verdict(c['pass'])}",
            f"- statuses {c['statuses']}, events prepared {c['events_prepared']},",
            f"  exhausted {c['exhausted']}", "",
        ]  # fmt: skip
    if f:
        out += [
            f"## Faults: N = {f['n']}", "",
            "- the province: 30 % 503, 10 % timeouts, 5 % resets, callbacks doubled / reordered 30 %;",
            f"  {f['kills']} SIGKILLs of a forwarder, Redis flushed once",
            f"- province received **{f['province_received']}** of {f['n']} (cases {f['province_cases']}),",
            f"  **lost {f['lost']}**; repeated requests absorbed by its dedupe: {f['duplicates_absorbed']}",
            f"- faults for {f['faulty_seconds']} s; every row delivered after {f['drained_seconds']} s;",
            f"  resets {f['resets']}, timeouts {f['timeouts']}, 503 answers {f['answered_503']}",
            f"- cases whose status differs from the province's after it moved them: **{f['mismatches']}**",
            f"  {f['mismatch_examples'] or ''}",
            f"- acceptance (0 lost, every case once, 0 mismatches): {_verdict(f['pass'])}", "",
        ]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="forwarding benchmarks")
    parser.add_argument("--only", nargs="*", default=["throughput", "callback", "faults"])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-fw-"))
    db = BenchDatabase(args.database_url)
    started: list[ManagedProcess] = []
    results: dict[str, dict] = {}
    try:
        wrk = ensure_wrk()
        db.create()
        redis = PrivateRedis(work)
        started.append(redis)
        ports = {name: free_port() for name in SIMULATORS}
        env = production_env(db.url, redis.url, work, 7200, ports)
        sim_port = free_port()
        yiwang = Gunicorn("yiwang", "wsgi:app", env, work, "/v1/ready")
        started.append(yiwang)
        env |= {
            "PROVINCE_BASE_URL": f"http://127.0.0.1:{sim_port}/", "PROVINCE_SIM_SCHEDULE": "off",
            "PROVINCE_SIM_RATE_LIMIT": str(RATE_LIMIT), "PROVINCE_RATE_LIMIT": str(RATE_LIMIT),
            "PROVINCE_SIM_CALLBACK_URL": f"{yiwang.base_url}/v1/platform/callbacks", "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        sim = Simulator("province", sim_port, env, work)
        started.append(sim)
        if "throughput" in args.only:
            results["throughput"] = throughput(env, work, sim, args.rows)
            print("throughput", results["throughput"], flush=True)
        if "callback" in args.only:
            numbers = submitted(env, work, 15_000, "c")
            results["callback"] = callback(env, work, wrk, numbers, args)
            print("callback", results["callback"], flush=True)
            _retire(env["DATABASE_URL"], "BENCHC%")
        if "faults" in args.only:
            results["faults"] = faults(env, work, sim, redis.url, args.n)
            print(
                "faults", {k: v for k, v in results["faults"].items() if k != "mismatch_examples"}, flush=True
            )
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_all(started, db)
    return write_report(args.out, render, results, all(r["pass"] for r in results.values()))


if __name__ == "__main__":
    sys.exit(main())
