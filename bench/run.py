"""`python -m bench.run`: load-test yiwang against a bare Flask app and write docs/benchmarks.md.

Steps: ensure wrk; create a throwaway PostgreSQL database (Alembic schema) and a Redis of our
own; import and publish a service catalog (5,000 items); seed a citizen and refresh tokens, a
citizen verified at L3 and the verification scenarios' citizens; start the real-name provider
simulators (cli.simulators) and gunicorn (gunicorn.conf.py) for wsgi:app and for
bench/bare_app.py; run wrk per scenario and the verification driver (bench/identity_load.py)
per verification scenario; then the application scenarios (bench/applications_load.py: GET and
submit, again after filling the applications table to a million rows); sample worker memory;
write the report. Servers and simulators are stopped and the database dropped at the end, also
on failure or Ctrl-C.

Exit status: 0 when every acceptance block of the run passes (GET /v1/me; the service catalog;
real-name verification; applications), 1 when one fails, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import applications_load as apps
from bench.catalog_load import SEARCH_QUERIES, catalog_preflight, search_paths, warm_catalog
from bench.environment import gunicorn_settings, plain_env, production_env
from bench.infra import (
    ROOT,
    BenchDatabase,
    BenchError,
    CpuMeter,
    Gunicorn,
    ManagedProcess,
    PrivateRedis,
    RssSampler,
    Simulator,
    add_database_url,
    check_redis_empty,
    ensure_wrk,
    free_port,
)
from bench.load import LoadResult, run_wrk, split_tokens
from bench.report import (
    CATALOG_ITEMS,
    CATALOG_SCENARIOS,
    IDENTITY_SCENARIOS,
    MB,
    acceptance,
    catalog_acceptance,
    identity_acceptance,
    machine_facts,
    render,
)
from bench.verification import (
    BENCH_FACE_LIMIT,
    SIMULATORS,
    VERIFICATION_SCENARIOS,
    VERIFIERS,
    VERIFY_WORKERS,
    prepare_simulators,
    run_verification_scenario,
)

# (key, label, server, request line, Lua script). Bare first: every ratio is relative to it.
# {code} is the catalog item the seed picked; the search script rotates over SEARCH_QUERIES.
SCENARIOS = (
    ("bare", "bare Flask JSON (baseline)", "bare", "GET /json", "get.lua"),
    ("health", "yiwang health", "yiwang", "GET /v1/health", "get.lua"),
    ("me", "yiwang profile, ES256 Bearer", "yiwang", "GET /v1/me", "get.lua"),
    ("identity", "yiwang identity (L3, masked), ES256 Bearer", "yiwang", "GET /v1/identity", "get.lua"),
    ("refresh", "yiwang token refresh (rotation)", "yiwang", "POST /v1/auth/refresh", "refresh.lua"),
    ("service", "yiwang service detail", "yiwang", "GET /v1/services/{code}", "get.lua"),
    ("service304", "yiwang service detail, If-None-Match (304)", "yiwang", "GET /v1/services/{code}",
     "conditional.lua"),
    ("search", "yiwang service search", "yiwang", "GET /v1/services?q=…", "search.lua"),
)  # fmt: skip
# The scenarios an acceptance block is computed from: a run without all of them is partial.
ACCEPTANCE_SCENARIOS = ("me", *CATALOG_SCENARIOS, *IDENTITY_SCENARIOS, *apps.FRESH)
# (name, key in the report data) of each acceptance block; the run passes when all of them do.
ACCEPTANCE_BLOCKS = (
    ("GET /v1/me", "acceptance"), ("service catalog", "catalog_acceptance"),
    ("real-name verification", "identity_acceptance"), ("applications", "applications_acceptance"),
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; every one has a default suitable for `make bench`."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=15, help="seconds of measured load per scenario")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each")
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    p.add_argument("--threads", type=int, default=0, help="wrk threads (default: usable cores)")
    add_database_url(p)
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL"),
        help="an EMPTY Redis database to use and flush afterwards (default: a private redis-server)",
    )
    p.add_argument(
        "--only", nargs="*", choices=[s[0] for s in (*SCENARIOS, *VERIFICATION_SCENARIOS, *apps.SCENARIOS)],
        help="run only these scenarios",
    )  # fmt: skip
    p.add_argument(
        "--catalog-items", type=int, default=CATALOG_ITEMS,
        help="published service items to import for the catalog scenarios",
    )  # fmt: skip
    apps.add_arguments(p)
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="report path")
    p.add_argument("--keep-logs", action="store_true", help="keep the server logs (path printed)")
    args = p.parse_args(argv)
    if args.only and "bare" not in args.only:
        args.only.insert(0, "bare")  # ratios need the baseline
    partial = args.only and not set(ACCEPTANCE_SCENARIOS) <= set(args.only)
    small = args.catalog_items < CATALOG_ITEMS or args.applications_rows < apps.BIG_ROWS
    if (partial or small) and args.out == p.get_default("out"):
        p.error(
            f"a partial run (--only without all of {', '.join(ACCEPTANCE_SCENARIOS)}, fewer than"
            f" {CATALOG_ITEMS} catalog items or {apps.BIG_ROWS:,} applications) must not overwrite the"
            " report: pass --out"
        )
    return args


def seed(env: dict[str, str], *args: str) -> dict:
    """Run bench.seed in its own process with the production environment."""
    cmd = [sys.executable, "-m", "bench.seed", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise BenchError(f"seeding failed ({' '.join(args[:1])}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class RefreshTokens:
    """Never-used refresh tokens, seeded on demand; each is handed out once."""

    def __init__(self, env: dict[str, str], work: Path, account_id: str) -> None:
        self.env, self.work, self.account_id, self.batches = env, work, account_id, 0

    def files(self, count: int, threads: int) -> str:
        """Seed `count` tokens and split them over the wrk threads; returns the file prefix."""
        self.batches += 1
        path = self.work / f"refresh.{self.batches}"
        seed(self.env, "refresh", str(path), str(count), self.account_id)
        tokens = path.read_text().split()
        path.unlink()
        split_tokens(tokens, path, threads)
        return str(path)


def run_scenario(
    args: argparse.Namespace, wrk: str, server: Gunicorn, script: str, path: str,
    script_args: list[str], refresh: RefreshTokens | None, threads: int, ours: Callable[[], list[int]],
) -> tuple[LoadResult, RssSampler]:  # fmt: skip
    """Warm up, then measure one scenario while sampling worker memory."""
    url = server.base_url + path
    common = {"connections": args.connections, "threads": threads}
    if refresh is not None:
        # The warm-up gets tokens at a generous rate, and its throughput sizes the measured run.
        rate = 3000.0
        if args.warmup:
            warm = run_wrk(wrk, url, script, [refresh.files(max(2000, args.warmup * 1500), threads)],
                           duration=args.warmup, **common)  # fmt: skip
            rate = warm.rps
        # Wide margin: the warm-up runs cold, and wrk threads do not finish their shares evenly.
        script_args = [refresh.files(math.ceil(rate * args.duration * 3) + 2000, threads)]
    elif args.warmup:
        run_wrk(wrk, url, script, script_args, duration=args.warmup, **common)
    offset = server.access_offset()
    with RssSampler(server) as sampler, CpuMeter(ours) as cpu:
        result = run_wrk(wrk, url, script, script_args, duration=args.duration, **common)
    result.per_worker = server.requests_per_worker(offset)
    result.statuses = server.status_counts(offset)
    result.cpu_busy_pct, result.cpu_other_pct = cpu.busy_pct, cpu.other_pct
    return result, sampler


def benchmark(args: argparse.Namespace, work: Path, db: BenchDatabase, started: list) -> dict:
    """Everything between setup and teardown; returns the report data."""
    wrk = ensure_wrk()
    threads = args.threads or min(len(os.sched_getaffinity(0)), args.connections)
    facts = machine_facts(wrk)
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    print(f"creating database {db.name} and running migrations", flush=True)
    db.create()
    if args.redis_url:
        facts["redis"] = check_redis_empty(args.redis_url)
        started.append(FlushOnStop(args.redis_url))  # only once we know it held nothing
        redis_url = args.redis_url
    else:
        redis = PrivateRedis(work)
        started.append(redis)
        facts["redis"] = check_redis_empty(redis.url) + " (private redis-server)"
        redis_url = redis.url
    facts["postgresql"] = db.server_version
    # The access tokens must outlive the whole run.
    ttl = max(900, (len(SCENARIOS) + len(VERIFICATION_SCENARIOS)) * (args.duration + args.warmup) + 600)
    ttl += apps.ttl_seconds(args)
    sim_ports = {name: free_port() for name in SIMULATORS}
    env = production_env(db.url, redis_url, work, ttl, sim_ports)
    every = (*SCENARIOS, *VERIFICATION_SCENARIOS, *apps.SCENARIOS)
    selected = [s[0] for s in every if not args.only or s[0] in args.only]
    applying = apps.Applications.selected(selected, args)
    verifying = [s for s in VERIFICATION_SCENARIOS if s[0] in selected]
    catalog: dict = {}
    if any(key in CATALOG_SCENARIOS for key in selected):
        print(f"importing and publishing a catalog of {args.catalog_items} items", flush=True)
        started_at = time.monotonic()
        catalog = seed(env, "catalog", str(work / "catalog.code"), str(args.catalog_items))
        catalog["seed_wall_seconds"] = round(time.monotonic() - started_at, 1)
        print(f"  {catalog['items']} items from {catalog['source']} in {catalog['seconds']} s", flush=True)
    citizen = seed(env, "citizen", str(work / "me.token"))
    if "identity" in selected:
        verified = seed(env, "identity", str(work / "identity.token"))
        print(f"  citizen verified in person: level {verified['level']}", flush=True)
    applications = apps.Applications(env, work)
    if applying:
        applications.setup()
    accounts_file = work / "verifiers.jsonl"
    sims: dict[str, Simulator] = {}
    if verifying:
        seed(env, "verifiers", str(accounts_file), str(VERIFIERS))
        print(f"starting the simulators ({', '.join(SIMULATORS)}) for {VERIFIERS} citizens", flush=True)
        for name in SIMULATORS:
            sims[name] = Simulator(name, sim_ports[name], env, work)
            started.append(sims[name])
        prepare_simulators(sims, env, accounts_file)
    print("starting gunicorn (bare Flask and yiwang)", flush=True)
    bare = Gunicorn("bare", "bench.bare_app:app", plain_env(), work, "/json")
    started.append(bare)
    yiwang = Gunicorn("yiwang", "wsgi:app", env, work, "/v1/ready")
    started.append(yiwang)
    servers = {"bare": bare, "yiwang": yiwang}

    def ours() -> list[int]:
        pids = [p.pid for p in started if isinstance(p, ManagedProcess)]
        return pids + [w.pid for s in servers.values() for w in s.workers()] + db.backend_pids()

    if catalog:  # fail before minutes of load if the catalog endpoints do not work
        catalog["etag"] = catalog_preflight(yiwang, catalog["detail_code"])
        catalog["queries"] = list(SEARCH_QUERIES)
    if applying:
        applications.preflight(yiwang)
    refresh = RefreshTokens(env, work, citizen["account_id"])
    results: dict[str, dict] = {}
    peaks: list[int] = []
    warmed = False
    for key, label, server_name, request, script in SCENARIOS:
        if key not in selected:
            continue
        if key in CATALOG_SCENARIOS and not warmed:
            warm_catalog(args, wrk, yiwang, catalog["detail_code"], threads)
            warmed = True
        request = request.format(code=catalog.get("detail_code"))
        path = request.split(" ", 1)[1]
        script_args = {
            "me": [str(work / "me.token")], "identity": [str(work / "identity.token")],
            "service304": [catalog.get("etag")], "search": search_paths(),
        }.get(key, [])  # fmt: skip
        if key == "search":
            path = "/v1/services"  # the script sets each request's path and query
            request = f"GET /v1/services?q=… ({len(SEARCH_QUERIES)} queries in turn)"
        print(f"scenario {key}: {request} for {args.duration} s", flush=True)
        result, sampler = run_scenario(
            args, wrk, servers[server_name], script, path, script_args,
            refresh if key == "refresh" else None, threads, ours,
        )  # fmt: skip
        if server_name == "yiwang":
            peaks.append(sampler.peak())
        results[key] = {"label": label, "request": request} | result.as_dict()
        if server_name == "yiwang":
            results[key]["rss_peak_mb"] = round(sampler.peak() / MB, 1)
        print(f"  {result.rps:.0f} rps, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms,"
              f" non-2xx {result.non_2xx}, socket errors {result.socket_errors}, statuses {result.statuses},"
              f" requests per worker {result.per_worker}, CPU busy {result.cpu_busy_pct}%"
              f" (not the benchmark: {result.cpu_other_pct}%)", flush=True)  # fmt: skip
    verifications: dict[str, dict] = {}
    groups = {
        "yiwang workers": lambda: [w.pid for w in yiwang.workers()],
        "postgresql": db.backend_pids,
        "redis": lambda: [p.pid for p in started if isinstance(p, PrivateRedis)],
    }
    for key, label, method, sim_name in verifying:
        request = f"POST /v1/identity/verifications + …/complete ({method})"
        print(f"scenario {key}: {request} for {args.duration} s, {VERIFY_WORKERS} workers", flush=True)
        summary, sampler = run_verification_scenario(args, yiwang, sims[sim_name], accounts_file, method,
                                                     ours, groups, plain_env())  # fmt: skip
        peaks.append(sampler.peak())
        verifications[key] = {"label": label, "request": request} | summary
        verifications[key]["rss_peak_mb"] = round(sampler.peak() / MB, 1)
        print(f"  {summary['per_second']:.1f} verifications/s ({summary['verifications']} passed), pair p50"
              f" {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, outcomes {summary['outcomes']},"
              f" statuses {summary['statuses']}, CPU % of one core {summary['process_cpu_pct']},"
              f" CPU busy {summary['cpu_busy_pct']}% (not the benchmark: {summary['cpu_other_pct']}%)",
              flush=True)  # fmt: skip
    if applying:
        measured, app_peaks = applications.run(args, applying, run_scenario, yiwang, wrk, threads, ours)
        results, peaks = results | measured, peaks + app_peaks
    if "bare" in results:
        # The baseline again at the end: ratios divide by the higher of the two runs, so a
        # baseline that happened to run slow cannot flatter yiwang.
        print(f"scenario bare (again): GET /json for {args.duration} s", flush=True)
        again, _ = run_scenario(args, wrk, bare, "get.lua", "/json", [], None, threads, ours)
        first = results["bare"]["rps"]
        print(f"  {again.rps:.0f} rps (first run {first:.0f})", flush=True)
        results["bare"]["rps_runs"] = [round(first, 1), round(again.rps, 1)]
        results["bare"]["rps"] = max(first, again.rps)
    after = yiwang.worker_rss()
    try:
        import psutil

        master = psutil.Process(yiwang.pid).memory_info().rss
    except Exception:  # only a figure in the report
        master = 0
    rss = {
        "workers": len(after),
        "after_max_mb": round(max(after, default=0) / MB, 1),
        "after_mean_mb": round(statistics.mean(after) / MB, 1) if after else 0.0,
        "after_each_mb": [round(x / MB, 1) for x in after],
        "peak_mb": round(max([*peaks, *after], default=0) / MB, 1),
        "master_mb": round(master / MB, 1),
    }
    config = gunicorn_settings(env) | {
        "workers_running": len(after), "connections": args.connections, "wrk_threads": threads,
        "duration": args.duration, "warmup": args.warmup,
    }  # fmt: skip
    data = {"machine": facts, "config": config, "results": results, "rss": rss}
    data["server_errors"] = yiwang.count_log("Traceback")
    data["worker_restarts"] = yiwang.count_log("Booting worker") - config["workers"]
    data["loadavg_before"] = loadavg_before
    if catalog:
        data["catalog"] = catalog
    if "me" in results:
        data["acceptance"] = acceptance(results, rss)
    if all(key in results for key in CATALOG_SCENARIOS):
        data["catalog_acceptance"] = catalog_acceptance(results, catalog["items"])
    if verifications:
        data["verifications"] = verifications
        data["verification_setup"] = {
            "accounts": VERIFIERS, "workers": VERIFY_WORKERS, "face_limit": BENCH_FACE_LIMIT,
            "simulators": {name: sim.base_url for name, sim in sims.items()},
        }  # fmt: skip
    if all(key in results or key in verifications for key in IDENTITY_SCENARIOS):
        data["identity_acceptance"] = identity_acceptance(results, verifications)
    data |= applications.report_data(results) if applying else {}
    return data


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the exit status."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-"))
    db = BenchDatabase(args.database_url)
    started: list = []
    try:
        data = benchmark(args, work, db, started)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchmark interrupted", file=sys.stderr)
        return 2
    finally:
        for proc in reversed(started):
            proc.stop()
        try:
            db.drop()
        except Exception as exc:  # report, never mask the original error
            print(f"could not drop database {db.name}: {exc}", file=sys.stderr)
        if args.keep_logs:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    blocks = {name: data[key] for name, key in ACCEPTANCE_BLOCKS if key in data}
    if not blocks:
        print(json.dumps(data["results"], indent=2))
        if data.get("verifications"):
            print(json.dumps(data["verifications"], indent=2, ensure_ascii=False))
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data))
    verdicts = ", ".join(f"{name} {'PASS' if b['passed'] else 'FAIL'}" for name, b in blocks.items())
    print(f"acceptance: {verdicts}; report written to {out}")
    return 0 if all(b["passed"] for b in blocks.values()) else 1


def _interrupt(_signum: int, _frame: object) -> None:
    # SIGTERM (e.g. a CI timeout) must still run the cleanup in main().
    raise KeyboardInterrupt


class FlushOnStop:
    """Cleanup for a caller-supplied Redis database: empty it again at the end."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stop(self) -> None:
        """Flush the database the benchmark filled."""
        import redis

        try:
            redis.Redis.from_url(self.url, socket_connect_timeout=2).flushdb()
        except (redis.RedisError, OSError) as exc:
            print(f"could not flush {self.url}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
