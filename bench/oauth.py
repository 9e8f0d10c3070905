"""`python -m bench.oauth`: the OAuth token endpoint and third-party reads against bare Flask.

Against a throwaway PostgreSQL database, a private Redis and gunicorn (gunicorn.conf.py) with
production settings; the bare Flask baseline runs under the same gunicorn config in the same run.

- bare: GET /json on bare Flask (the baseline of every ratio).
- list (first party): GET /v1/applications with the citizen's own app token.
- list (third party): GET /v1/applications with a convenience app's token for the same citizen
  (scope check, revocation check of the token family, and a ledger line written per request).
- exchange: POST /oauth/token, authorization_code + PKCE S256 + client_secret_basic, a fresh
  code per request (codes are single-use and live 60 s, so they are inserted just before).

The citizen has DRAFTS draft applications of a catalog item. Acceptance (issue: token endpoint
≥ 200/s; GET /v1/applications with a third-party token ≥ 0.3× bare Flask). Writes
docs/benchmarks-oauth.md; exit 0 on PASS, 1 on FAIL, 2 when the run failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.environment import plain_env, production_env
from bench.infra import (
    ROOT,
    BenchDatabase,
    BenchError,
    Gunicorn,
    ManagedProcess,
    PrivateRedis,
    ensure_wrk,
    free_port,
    stop_all,
    write_report,
)
from bench.load import LoadResult, run_wrk
from bench.verification import SIMULATORS

RESULTS = ROOT / "docs" / "benchmarks-oauth.md"
MIN_TOKENS = 200.0
MIN_LIST_RATIO = 0.3
DRAFTS = 3
WARM_CODES = 3000


def _run(env: dict[str, str], module: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise BenchError(f"{module} {args[:1]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _drafts(base_url: str, token: str, code: str) -> int:
    made = 0
    for _ in range(DRAFTS):
        resp = httpx.post(
            f"{base_url}/v1/applications",
            json={"service_code": code},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        made += resp.status_code == 201
    return made


def _ledger_lines(url: str, *, answered: int) -> dict:
    """Every answered app request must have its ledger line (wrk counts answers; requests still in
    flight when a run ends are answered too, but not counted: up to one per connection)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        lines = -1
        for _ in range(50):  # the spools insert within their interval
            with engine.connect() as conn:
                now = conn.execute(
                    text("SELECT count(*) FROM data_access_log WHERE accessor_type = 'client'")
                ).scalar()
            if now == lines:
                break
            lines = now
            time.sleep(0.5)
    finally:
        engine.dispose()
    return {"lines": lines, "answered": answered}


def _line(label: str, r: LoadResult, bare: LoadResult | None = None) -> str:
    ratio = f" = **{r.rps / bare.rps:.3f}×** bare" if bare and bare.rps else ""
    return (
        f"- {label}: {r.rps} rps{ratio} (p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms),"
        f" non-2xx {r.non_2xx}, socket errors {r.socket_errors}"
    )


def render(facts: dict, r: dict) -> str:
    ok = "PASS" if r["pass"] else "FAIL"
    return "\n".join(
        [
            "# OAuth benchmarks",
            "",
            f"Run {facts['when']} on {facts['machine']}: `python -m bench.oauth` (`make bench-oauth`);"
            f" {r['connections']} connections, {r['duration']} s per scenario"
            f" (each after {r['warmup']} s unmeasured),"
            " gunicorn as configured by"
            " gunicorn.conf.py, PostgreSQL and a private Redis.",
            "",
            r["bare"],
            r["list_first"],
            r["list_third"] + f" (acceptance ≥ {MIN_LIST_RATIO}×)",
            f"- data-use ledger: {r['ledger']['lines']} lines for {r['ledger']['answered']} app requests"
            " answered in the warm-up and the measured run (each answered request has its line; requests"
            f" in flight when a run ended were answered uncounted, ≤ {r['connections']} per run)",
            r["exchange"] + f" (acceptance ≥ {MIN_TOKENS:.0f}/s); {r['codes_used']} codes sent,"
            f" {r['codes_exhausted']} requests after the codes ran out",
            "",
            f"The citizen has {r['drafts']} draft applications. Each third-party read also checks the"
            " token family's revocation, the scope of the view, and spools the citizen's data-use"
            " ledger line to local disk before answering (inserted by each process's spool thread,"
            " core/spool.py; at most once a minute the grant's last use). Each code exchange claims"
            " the code by a conditional update, creates the token family, verifies PKCE, signs an ES256"
            " access token and stores a refresh token.",
            "",
            f"Acceptance: **{ok}**",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OAuth benchmarks")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds before each scenario")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codes", type=int, default=20000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-oauth-"))
    db = BenchDatabase(args.database_url)
    started: list[ManagedProcess] = []
    r: dict = {"connections": args.connections, "duration": args.duration, "warmup": args.warmup}
    common = {"duration": args.duration, "connections": args.connections, "threads": args.threads}
    try:
        wrk = ensure_wrk()
        db.create()
        redis = PrivateRedis(work)
        started.append(redis)
        env = production_env(db.url, redis.url, work, 7200, {name: free_port() for name in SIMULATORS})
        env |= {"LOG_LEVEL": "WARNING", "OAUTH_ACCESS_TOKEN_TTL": "7200"}
        catalog = _run(env, "bench.seed", "catalog", str(work / "catalog.code"), "200")
        _run(env, "bench.oauth_data", "setup", str(work))
        bare = Gunicorn("bare", "bench.bare_app:app", plain_env(), work, "/json")
        started.append(bare)
        run_wrk(wrk, bare.base_url + "/json", "get.lua", [], **(common | {"duration": args.warmup}))
        base = run_wrk(wrk, bare.base_url + "/json", "get.lua", [], **common)
        bare.stop()
        yiwang = Gunicorn("yiwang", "wsgi:app", env, work, "/v1/ready")
        started.append(yiwang)
        r["drafts"] = _drafts(
            yiwang.base_url, (work / "citizen.token").read_text().strip(), catalog["detail_code"]
        )
        url = yiwang.base_url + "/v1/applications"
        warm = common | {"duration": args.warmup}
        run_wrk(wrk, url, "get.lua", [str(work / "citizen.token")], **warm)  # unmeasured: workers warm up
        first = run_wrk(wrk, url, "get.lua", [str(work / "citizen.token")], **common)
        warm_third = run_wrk(wrk, url, "get.lua", [str(work / "client.token")], **warm)
        third = run_wrk(wrk, url, "get.lua", [str(work / "client.token")], **common)
        r["ledger"] = _ledger_lines(db.url, answered=warm_third.requests + third.requests)
        token_args = [str(work / "codes"), str(work / "verifier"), str(work / "client.basic")]
        # Unmeasured, as for the GETs: each worker's first exchanges compile and prepare statements
        # the reads never ran. Codes are single-use, so the measured run gets fresh ones.
        _run(env, "bench.oauth_data", "codes", str(work), str(WARM_CODES), str(args.threads))
        run_wrk(wrk, yiwang.base_url + "/oauth/token", "token_exchange.lua", token_args, **warm)
        _run(env, "bench.oauth_data", "codes", str(work), str(args.codes), str(args.threads))
        exchange = run_wrk(
            wrk,
            yiwang.base_url + "/oauth/token",
            "token_exchange.lua",
            token_args,
            **common,
        )
        r |= {
            "bare": _line("bare Flask GET /json (baseline)", base),
            "list_first": _line("GET /v1/applications, first-party token", first, base),
            "list_third": _line("GET /v1/applications, third-party token (applications.read)", third, base),
            "exchange": _line("POST /oauth/token, code + PKCE exchange", exchange),
            "codes_used": exchange.tokens_used,
            "codes_exhausted": exchange.tokens_exhausted,
            "raw": {"bare": base.rps, "first": first.rps, "third": third.rps, "exchange": exchange.rps},
        }
        r["pass"] = (
            base.rps > 0
            and third.rps / base.rps >= MIN_LIST_RATIO
            and third.non_2xx == 0
            and r["ledger"]["answered"]
            <= r["ledger"]["lines"]
            <= r["ledger"]["answered"] + 2 * args.connections
            and exchange.rps >= MIN_TOKENS
            and exchange.non_2xx == 0
            and exchange.tokens_exhausted == 0
        )
        print(json.dumps(r, ensure_ascii=False, indent=1), flush=True)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_all(started, db)
    return write_report(args.out, render, r, r["pass"])


if __name__ == "__main__":
    sys.exit(main())
