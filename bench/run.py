"""`python -m bench.run`: load-test yiwang against a bare Flask app and write docs/benchmarks.md.

Steps: ensure wrk; create a throwaway PostgreSQL database (Alembic schema) and a Redis of our
own; import and publish a service catalog (5,000 items); seed a citizen and refresh tokens, a
citizen verified at L3 and the verification scenarios' citizens; start the real-name provider
simulators (cli.simulators) and gunicorn (gunicorn.conf.py) for wsgi:app and for
bench/bare_app.py; run wrk per scenario and the verification driver (bench/identity_load.py)
per verification scenario; sample worker memory; write the report. Servers and simulators are
stopped and the database dropped at the end, also on failure or Ctrl-C.

Exit status: 0 when every acceptance block of the run passes (GET /v1/me; the service catalog;
real-name verification), 1 when one fails, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import runpy
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.infra import (
    ROOT,
    BenchDatabase,
    BenchError,
    CpuMeter,
    Gunicorn,
    ManagedProcess,
    PrivateRedis,
    ProcessCpu,
    RssSampler,
    Simulator,
    check_redis_empty,
    ensure_wrk,
    free_port,
)
from bench.load import LoadResult, run_verifications, run_wrk, split_tokens
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
# What citizens type (their words, not the catalog's: 生孩子, 开店 rely on the synonym list).
SEARCH_QUERIES = (
    "身份证", "生孩子", "公积金提取", "开店", "结婚", "社保卡",
    "医保", "居住证", "户口", "营业执照", "低保", "上学",
)  # fmt: skip
# (key, label, method, simulator) of the scenarios the verification driver (bench/identity_load.py)
# runs instead of wrk: start + complete against a provider simulator, after the wrk scenarios.
VERIFICATION_SCENARIOS = (
    ("verifications", "start + complete, Tencent FaceID", "tencent_faceid", "faceid"),
    ("verifications_alipay", "start + complete, Alipay (informational)", "alipay_face", "alipay"),
)
# Simulators started for the verification scenarios; every provider endpoint points at one.
SIMULATORS = ("faceid", "alipay", "idcheck", "wechat")
# Citizens the verification driver verifies, each as its own person, and its concurrent workers.
VERIFIERS = 64
VERIFY_WORKERS = 16
# The face limits (3 per account per day, 10 per IP per hour) would end a throughput test
# within seconds; the limiter does the same Redis work per request whatever the limit.
BENCH_FACE_LIMIT = 1_000_000
# The scenarios an acceptance block is computed from: a run without all of them is partial.
ACCEPTANCE_SCENARIOS = ("me", *CATALOG_SCENARIOS, *IDENTITY_SCENARIOS)
# (name, key in the report data) of each acceptance block; the run passes when all of them do.
ACCEPTANCE_BLOCKS = (
    ("GET /v1/me", "acceptance"), ("service catalog", "catalog_acceptance"),
    ("real-name verification", "identity_acceptance"),
)  # fmt: skip
# Variables the production config reads that must not leak in from the caller's shell.
_SCRUBBED_ENV = (
    "DATA_KEY_ACTIVE", "YIWANG_INSTANCE_DIR", "DATABASE_URL", "REDIS_URL", "SECRET_KEY",
    "ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "IDCHECK_APP_ID", "TENCENT_SECRET_ID",
    "WECHAT_APPID", "FACEID_RULE_ID", "FACE_CONSENT_VERSION", "IDENTITY_METHODS_APP",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; every one has a default suitable for `make bench`."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=15, help="seconds of measured load per scenario")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each")
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    p.add_argument("--threads", type=int, default=0, help="wrk threads (default: usable cores)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server to create the throwaway database on (env BENCH_DATABASE_URL)",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL"),
        help="an EMPTY Redis database to use and flush afterwards (default: a private redis-server)",
    )
    p.add_argument(
        "--only", nargs="*", choices=[s[0] for s in (*SCENARIOS, *VERIFICATION_SCENARIOS)],
        help="run only these scenarios",
    )  # fmt: skip
    p.add_argument(
        "--catalog-items", type=int, default=CATALOG_ITEMS,
        help="published service items to import for the catalog scenarios",
    )  # fmt: skip
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="report path")
    p.add_argument("--keep-logs", action="store_true", help="keep the server logs (path printed)")
    args = p.parse_args(argv)
    if args.only and "bare" not in args.only:
        args.only.insert(0, "bare")  # ratios need the baseline
    partial = args.only and not set(ACCEPTANCE_SCENARIOS) <= set(args.only)
    if (partial or args.catalog_items < CATALOG_ITEMS) and args.out == p.get_default("out"):
        p.error(
            f"a partial run (--only without all of {', '.join(ACCEPTANCE_SCENARIOS)}, or fewer than"
            f" {CATALOG_ITEMS} catalog items) must not overwrite the report: pass --out"
        )
    return args


def plain_env() -> dict[str, str]:
    """The caller's environment (GUNICORN_* overrides included) without yiwang settings.

    max_requests is off unless the caller sets GUNICORN_MAX_REQUESTS: at benchmark rates a
    worker reaches production's 100,000 ± 10,000 requests within one full run, and the restart
    (a new app, and the catalog read model rebuilt on its first catalog request while its
    connections wait) would land inside whichever scenario happens to be measured.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    return {"GUNICORN_MAX_REQUESTS": "0"} | env | {"PYTHONUNBUFFERED": "1"}


def rsa_key_pair() -> tuple[str, str]:
    """A fresh RSA-2048 key pair as PEM: (PKCS#8 private key, SubjectPublicKeyInfo public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def alipay_env() -> dict[str, str]:
    """The application's fresh RSA2 key pair, and the Alipay public key it trusts.

    The simulator verifies requests with ALIPAY_SIM_APP_PUBLIC_KEY when its config carries one
    (the harness also registers the key through POST /_sim/apps, which works either way). It
    signs its answers with the development platform key in integrations/alipay/dev_keys.py and
    cannot be given another one, so yiwang must trust that key's public half: a fresh platform
    key pair would make every Alipay answer fail signature verification.
    """
    from integrations.alipay import dev_keys

    app_private, app_public = rsa_key_pair()
    return {
        "ALIPAY_APP_PRIVATE_KEY": app_private,
        "ALIPAY_SIM_APP_PUBLIC_KEY": app_public,
        "ALIPAY_PUBLIC_KEY": dev_keys.PLATFORM_PUBLIC_KEY,
    }


def simulator_env(ports: dict[str, int]) -> dict[str, str]:
    """Point every real-name provider (and WeChat) at the simulator on its port."""
    return {
        "FACEID_ENDPOINT": f"127.0.0.1:{ports['faceid']}",
        "FACEID_SCHEME": "http",
        "ALIPAY_GATEWAY": f"http://127.0.0.1:{ports['alipay']}/gateway.do",
        "IDCHECK_BASE_URL": f"http://127.0.0.1:{ports['idcheck']}/",
        "WECHAT_API_BASE": f"http://127.0.0.1:{ports['wechat']}/",
    }


def production_env(
    database_url: str, redis_url: str, work: Path, ttl: int, sim_ports: dict[str, int] | None = None
) -> dict[str, str]:
    """ProductionConfig refuses development secrets, so generate real ones for this run."""
    ports = sim_ports or {name: free_port() for name in SIMULATORS}
    return plain_env() | {
        "YIWANG_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATA_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(16)).decode(),
        "LOOKUP_HASH_KEY": secrets.token_urlsafe(48),
        "WECHAT_SECRET": secrets.token_hex(16),
        "TENCENT_SECRET_KEY": secrets.token_urlsafe(32),
        "IDCHECK_APP_SECRET": secrets.token_urlsafe(32),
        **alipay_env(),
        **simulator_env(ports),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "YIWANG_INSTANCE_DIR": str(work / "instance"),
        "TRUSTED_PROXY_HOPS": "1",  # see refresh.lua: each request has its own client address
        "ACCESS_TOKEN_TTL": str(ttl),
        "FACE_PER_ACCOUNT_PER_DAY": str(BENCH_FACE_LIMIT),
        "FACE_PER_IP_PER_HOUR": str(BENCH_FACE_LIMIT),
    }


def search_paths() -> list[str]:
    """The search scenario's request paths, URL-encoded."""
    return [f"/v1/services?q={urllib.parse.quote(q)}" for q in SEARCH_QUERIES]


def _get(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
    """Status and ETag of one GET (urllib raises for a 304 like for any status outside 2xx)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
            return resp.status, resp.headers.get("ETag")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("ETag")
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"GET {url} failed: {exc}") from exc


def catalog_preflight(server: Gunicorn, code: str) -> str:
    """Learn the detail's ETag; check that revalidating it answers 304 and every search 200."""
    headers = {"Accept": "application/json"}  # as the Lua scripts send: no gzip
    url = f"{server.base_url}/v1/services/{code}"
    status, etag = _get(url, headers)
    if status != 200 or not etag:
        raise BenchError(f"GET /v1/services/{code} answered {status} with ETag {etag!r}, not 200 with one")
    status, _ = _get(url, headers | {"If-None-Match": etag})
    if status != 304:
        raise BenchError(f"GET /v1/services/{code} with If-None-Match: {etag} answered {status}, not 304")
    for path in search_paths():
        status, _ = _get(server.base_url + path, headers)
        if status != 200:
            raise BenchError(f"GET {urllib.parse.unquote(path)} answered {status}, not 200")
    return etag


def warm_catalog(args: argparse.Namespace, wrk: str, server: Gunicorn, code: str, threads: int) -> None:
    """Unmeasured load on the detail so every worker has loaded the catalog before its scenarios.

    A worker that has not built its read model (entries, search index) yet does so on its
    first catalog request; a scenario's own short warm-up might not cover that in every worker.
    """
    offset = server.access_offset()
    seconds = max(5, args.warmup)
    run_wrk(wrk, f"{server.base_url}/v1/services/{code}", "get.lua", [], duration=seconds,
            connections=args.connections, threads=threads)  # fmt: skip
    per_worker = server.requests_per_worker(offset)
    print(f"  catalog warm-up ({seconds} s): requests per worker {per_worker}", flush=True)


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


def prepare_simulators(sims: dict[str, Simulator], env: dict[str, str], accounts_file: Path) -> None:
    """Make the face simulators pass every flow of the verifiers' people without a phone.

    Each citizen's person is registered in the simulated population register (an unknown ID
    number fails as no_record), the face flows pass on the first query (auto mode: the phone
    would have done the face scan), and the Alipay simulator learns the application's fresh
    public key (it otherwise knows only the development key).
    """
    people = [json.loads(line) for line in accounts_file.read_text().splitlines() if line.strip()]
    for name in ("faceid", "alipay"):
        sim = sims[name]
        for person in people:
            sim.control("/_sim/people", {"name": person["name"], "id_number": person["id_number"]})
        sim.control("/_sim/face/auto", {"outcome": "pass"})
    app_id = env.get("ALIPAY_APP_ID") or "2021000000000001"  # config/settings.py's default
    sims["alipay"].control("/_sim/apps", {"app_id": app_id, "public_key": env["ALIPAY_SIM_APP_PUBLIC_KEY"]})


def run_verification_scenario(
    args: argparse.Namespace, server: Gunicorn, sim: Simulator, accounts_file: Path, method: str,
    ours: Callable[[], list[int]], groups: dict[str, Callable[[], list[int]]],
) -> tuple[dict, RssSampler]:  # fmt: skip
    """Warm up, then measure start + complete with the verification driver in its own process."""
    common = {"method": method, "workers": VERIFY_WORKERS, "env": plain_env()}
    warm = None
    if args.warmup:
        warm = run_verifications(server.base_url, accounts_file, duration=args.warmup, **common)
    offset = server.access_offset()
    procs = ProcessCpu(groups | {"simulator": lambda: [sim.pid]})
    with RssSampler(server) as sampler, CpuMeter(ours) as cpu, procs:
        summary = run_verifications(server.base_url, accounts_file, duration=args.duration, **common)
    seconds = summary["seconds"] or 1.0
    cpu_pct = procs.core_pct() | {"load driver": round(100 * summary["client_cpu_seconds"] / seconds, 1)}
    done = summary["verifications"]
    cpu_ms = {k: round(1000 * v / done, 2) if done else None for k, v in procs.cpu_seconds.items()}
    cpu_ms["load driver"] = round(1000 * summary["client_cpu_seconds"] / done, 2) if done else None
    summary |= {
        "per_worker": server.requests_per_worker(offset), "statuses": server.status_counts(offset),
        "cpu_busy_pct": cpu.busy_pct, "cpu_other_pct": cpu.other_pct, "process_cpu_pct": cpu_pct,
        "cpu_ms_per_verification": cpu_ms, "simulator": sim.name.removeprefix("sim-"),
        "warmup": {"verifications": warm["verifications"], "outcomes": warm["outcomes"]} if warm else None,
    }  # fmt: skip
    return summary, sampler


def gunicorn_settings(env: dict[str, str]) -> dict:
    """The values gunicorn.conf.py resolves to in the servers' environment."""
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    keys = ("workers", "worker_class", "threads", "keepalive", "timeout", "max_requests",
            "max_requests_jitter", "preload_app", "accesslog")  # fmt: skip
    return {k: conf[k] for k in keys}


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
    sim_ports = {name: free_port() for name in SIMULATORS}
    env = production_env(db.url, redis_url, work, ttl, sim_ports)
    selected = [s[0] for s in (*SCENARIOS, *VERIFICATION_SCENARIOS) if not args.only or s[0] in args.only]
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
                                                     ours, groups)  # fmt: skip
        peaks.append(sampler.peak())
        verifications[key] = {"label": label, "request": request} | summary
        verifications[key]["rss_peak_mb"] = round(sampler.peak() / MB, 1)
        print(f"  {summary['per_second']:.1f} verifications/s ({summary['verifications']} passed), pair p50"
              f" {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, outcomes {summary['outcomes']},"
              f" statuses {summary['statuses']}, CPU % of one core {summary['process_cpu_pct']},"
              f" CPU busy {summary['cpu_busy_pct']}% (not the benchmark: {summary['cpu_other_pct']}%)",
              flush=True)  # fmt: skip
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
