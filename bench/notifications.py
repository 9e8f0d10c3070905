"""`python -m bench.notifications`: fan-out of case events to the push simulators, and inbox latency.

Against a throwaway PostgreSQL database, a private Redis, the APNs (HTTP/2), JPush and Huawei
simulators (`cli.simulators`) and 2 notifier processes (`python -m workers.notifier`), with
production settings (quiet hours off, so the run measures sending at any hour):

- CITIZENS accounts with one application and one app device each (a third each on APNs, JPush
  and Huawei Push Kit);
- a feeder inserts N case events (application notices, as the forwarding applier writes them
  when the province moves cases) at RATE per second, in batches every 100 ms;
- the notifiers turn each into an inbox entry and a push message and send it.

Measured: event-to-inbox latency (notification created − event written, p50/p99/max), and
messages reaching a final state per second over the middle 80 % of them. Acceptance: every
message delivered, ≥ 500 messages/s, inbox p99 < 1 s. For scale, the bare Flask baseline's
requests/s from wrk in the same run. Writes docs/benchmarks-notifications.md; exit 0 when the
acceptance passes, 1 when it fails, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
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

RESULTS = ROOT / "docs" / "benchmarks-notifications.md"
MIN_RATE = 500.0
MAX_P99 = 1.0
EVENTS = ("case_received", "case_accepted", "result_delivered")
PROVIDERS = ("apns", "jpush", "huawei")


def _psql(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _run(env: dict[str, str], module: str, *args: str) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise BenchError(f"{module} {args[0]} failed:\n{proc.stderr[-3000:]}")


def citizens(env: dict[str, str], work: Path, count: int) -> list[tuple[str, str]]:
    """`count` accounts, each with a copy of one real application and one push device."""
    setup = work / "apps-setup.json"
    _run(env, "bench.applications_data", "setup", str(setup), "1", "0")
    template = json.loads(setup.read_text())["citizens"][0]["template_id"]
    with _psql(env["DATABASE_URL"]) as conn:
        accounts = [
            r[0]
            for r in conn.execute(
                "INSERT INTO accounts (id, status, identity_level, created_at, updated_at, created_via)"
                " SELECT gen_random_uuid()::text, 'active', 'L2', now(), now(), 'app'"
                " FROM generate_series(1, %s) RETURNING id",
                (count,),
            ).fetchall()
        ]
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'applications'"
                " AND column_name NOT IN ('id', 'account_id') ORDER BY ordinal_position"
            ).fetchall()
        ]
        cols = ", ".join(columns)
        apps = conn.execute(
            f"INSERT INTO applications (id, account_id, {cols})"
            f" SELECT gen_random_uuid()::text, a.id, {', '.join('t.' + c for c in columns)}"
            " FROM applications t, unnest(%s::text[]) AS a(id) WHERE t.id = %s RETURNING id, account_id",
            (accounts, template),
        ).fetchall()
        rows = []
        for i, account in enumerate(accounts):
            provider = PROVIDERS[i % 3]
            token = {
                "apns": uuid.uuid4().hex + uuid.uuid4().hex,
                "jpush": "1a0018970a" + uuid.uuid4().hex[:9],
                "huawei": "AMhw" + uuid.uuid4().hex + uuid.uuid4().hex,
            }[provider]
            platform = {"apns": "ios", "jpush": "android", "huawei": "harmony"}[provider]
            rows.append((str(uuid.uuid4()), account, provider, token, platform))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO devices (id, account_id, provider, token, platform, created_at, last_seen_at)"
                " VALUES (%s, %s, %s, %s, %s, now(), now())",
                rows,
            )
    return [(a, acc) for a, acc in apps]


def feed(url: str, apps: list[tuple[str, str]], n: int, rate: float) -> float:
    """Write `n` case events at `rate` per second; returns the rate achieved."""
    batch = max(1, round(rate / 10))
    started = time.monotonic()
    sent = 0
    with _psql(url) as conn:
        while sent < n:
            due = started + sent / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            rows = []
            for i in range(sent, min(n, sent + batch)):
                app_id, account = apps[i % len(apps)]
                params = {
                    "service_name": "社会保障卡申领",
                    "case_number": f"BENCHN{i:010d}",
                    "status": "accepted",
                }
                rows.append(
                    (str(uuid.uuid4()), f"bench:{i}", account, app_id, EVENTS[i % 3], json.dumps(params))
                )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO application_notices (id, dedupe_key, account_id, application_id, event_type,"
                    " params, created_at) VALUES (%s, %s, %s, %s, %s, %s, clock_timestamp())",
                    rows,
                )
            sent += len(rows)
    return sent / (time.monotonic() - started)


def _counts(url: str) -> tuple[int, int]:
    with _psql(url) as conn:
        total, final = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE state IN ('delivered', 'permanent_failure',"
            " 'technical_failure')) FROM notification_messages"
        ).fetchone()
    return int(total), int(final)


def measure(url: str) -> dict:
    with _psql(url) as conn:
        lat = [
            float(r[0])
            for r in conn.execute(
                "SELECT extract(epoch FROM n.created_at - an.created_at) FROM notifications n"
                " JOIN application_notices an ON n.dedupe_key = 'notice:' || an.dedupe_key ORDER BY 1"
            ).fetchall()
        ]
        finals = [
            float(r[0])
            for r in conn.execute(
                "SELECT extract(epoch FROM final_at) FROM notification_messages WHERE final_at IS NOT NULL"
                " ORDER BY final_at"
            ).fetchall()
        ]
        states = dict(
            conn.execute("SELECT state, count(*) FROM notification_messages GROUP BY state").fetchall()
        )
        first_event = conn.execute(
            "SELECT extract(epoch FROM min(created_at)) FROM application_notices"
        ).fetchone()[0]
    lo, hi = finals[int(len(finals) * 0.1)], finals[int(len(finals) * 0.9) - 1]
    middle = int(len(finals) * 0.9) - int(len(finals) * 0.1)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(len(lat) * p))], 3) if lat else float("nan")

    return {
        "notifications": len(lat), "messages": sum(states.values()), "states": states,
        "rate": round(middle / (hi - lo), 1) if hi > lo else 0.0,
        "overall_rate": round(len(finals) / (finals[-1] - float(first_event)), 1) if finals else 0.0,
        "inbox_p50": pct(0.5), "inbox_p99": pct(0.99), "inbox_max": round(lat[-1], 3) if lat else None,
    }  # fmt: skip


def saturation(env: dict[str, str], apps: list[tuple[str, str]], notifiers: list, rate: float) -> dict:
    """Events faster than the notifiers can send (6,000 at `rate`/s): the capacity, for the record."""
    url = env["DATABASE_URL"]
    with _psql(url) as conn:
        conn.execute("TRUNCATE notification_messages, notifications, application_notices")
    fed = feed(url, apps, 6000, rate)
    deadline = time.monotonic() + 300
    while _counts(url) != (6000, 6000):
        if time.monotonic() > deadline or not all(p.alive() for p in notifiers):
            raise BenchError("saturation run did not drain in time")
        time.sleep(0.5)
    got = measure(url)
    return {"asked": rate, "fed": round(fed, 1), "rate": got["rate"], "inbox_p99": got["inbox_p99"]}


def _cpu(procs: list[ManagedProcess]) -> dict[str, float]:
    """CPU seconds used so far by each process (and its children), and by PostgreSQL."""
    import psutil

    out: dict[str, float] = {}
    for p in procs:
        try:
            tree = [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
            out[p.name] = sum(sum(t.cpu_times()[:2]) for t in tree)
        except psutil.NoSuchProcess:
            pass
    out["postgres"] = sum(
        sum(q.cpu_times()[:2]) for q in psutil.process_iter(["name"]) if q.info["name"] == "postgres"
    )
    return out


def _sim_counts(sims: dict[str, Simulator]) -> dict[str, int]:
    import urllib.request

    out = {}
    for name, sim in sims.items():
        path = {"apns": "/_sim/notifications", "jpush": "/_sim/pushes", "huawei": "/_sim/messages"}[name]
        with urllib.request.urlopen(sim.base_url + path, timeout=30) as resp:
            data = json.loads(resp.read())
        out[name] = len(data["messages"] if isinstance(data, dict) else data)
    return out


def _saturation_lines(sat: dict | None) -> list[str]:
    if not sat:
        return []
    return [
        f"- capacity probe: 6,000 events written at {sat['fed']}/s, faster than they can be sent:"
        f" messages final at **{sat['rate']}/s**, inbox p99 {sat['inbox_p99']} s"
        " (the backlog waits; not part of the acceptance)"
    ]


def render(facts: dict, r: dict) -> str:
    ok = "PASS" if r["pass"] else "FAIL"
    return "\n".join([
        "# Notification benchmarks", "",
        f"Run {facts['when']} on {facts['machine']}:"
        " `python -m bench.notifications` (`make bench-notifications`).",
        "", f"## Fan-out of {r['n']:,} case events with 2 notifier processes", "",
        f"- {r['citizens']:,} citizens, one app device each"
        " (APNs over HTTP/2, JPush, Huawei Push Kit simulators);",
        f"  events written at {r['fed_rate']}/s (asked {r['rate_asked']}/s), each one inbox entry + one push",
        f"- messages final per second (middle 80 %): **{r['rate']}/s** (acceptance ≥ {MIN_RATE:.0f}/s);"
        f" from the first event to the last message: {r['overall_rate']}/s",
        f"- event → inbox latency: p50 {r['inbox_p50']} s, **p99 {r['inbox_p99']} s**"
        f" (acceptance < {MAX_P99} s),"
        f" max {r['inbox_max']} s",
        f"- message states: {r['states']}; received by the simulators: {r['simulators']}",
        f"- bare Flask baseline in the same run, for scale: {r['bare_rps']} requests/s",
        *_saturation_lines(r.get("saturation")),
        f"- notifier threads {r['threads']} per process; wall {r['wall']} s;"
        f" CPU seconds during the run: {r.get('cpu_seconds')}", "",
        f"Acceptance (every message delivered, ≥ {MIN_RATE:.0f}/s, inbox p99 < {MAX_P99} s): **{ok}**", "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="notification fan-out benchmark")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=550.0, help="events written per second")
    parser.add_argument("--citizens", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8, help="sending threads per notifier")
    parser.add_argument("--batch", type=int, default=10, help="messages a sending thread takes at once")
    parser.add_argument(
        "--saturation", type=float, default=800.0, help="events/s of the capacity probe (0: skip)"
    )
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-notify-"))
    db = BenchDatabase(args.database_url)
    started: list[ManagedProcess] = []
    result: dict[str, Any] = {
        "n": args.n,
        "rate_asked": args.rate,
        "citizens": args.citizens,
        "threads": args.threads,
    }
    try:
        wrk = ensure_wrk()
        db.create()
        redis = PrivateRedis(work)
        started.append(redis)
        env = production_env(db.url, redis.url, work, 7200, {name: free_port() for name in SIMULATORS})
        ports = {name: free_port() for name in PROVIDERS}
        env |= {
            "APNS_BASE_URL": f"http://127.0.0.1:{ports['apns']}",
            "JPUSH_BASE_URL": f"http://127.0.0.1:{ports['jpush']}",
            "HUAWEI_PUSH_BASE_URL": f"http://127.0.0.1:{ports['huawei']}",
            "HUAWEI_TOKEN_URL": f"http://127.0.0.1:{ports['huawei']}/oauth2/v3/token",
            "NOTIFY_QUIET_HOURS": "00:00-00:00", "NOTIFY_THREADS": str(args.threads),
            "NOTIFY_BATCH": str(args.batch), "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        bare = Gunicorn("bare", "bench.bare_app:app", plain_env(), work, "/json")
        try:
            result["bare_rps"] = run_wrk(wrk, bare.base_url + "/json", "get.lua", [], duration=5,
                                         connections=16, threads=2).rps  # fmt: skip
        finally:
            bare.stop()
        sims = {name: Simulator(name, port, env, work) for name, port in ports.items()}
        started += list(sims.values())
        apps = citizens(env, work, args.citizens)
        cmd = [sys.executable, "-m", "workers.notifier"]
        notifiers = [ManagedProcess(f"notifier-{i}", cmd, env, work) for i in range(2)]
        started += notifiers
        time.sleep(3)  # both notifiers up
        cpu_before = _cpu(started)
        began = time.monotonic()
        result["fed_rate"] = round(feed(env["DATABASE_URL"], apps, args.n, args.rate), 1)
        deadline = time.monotonic() + 300
        while True:
            total, final = _counts(env["DATABASE_URL"])
            if total >= args.n and final >= total:
                break
            if time.monotonic() > deadline or not all(p.alive() for p in notifiers):
                raise BenchError(f"messages not final in time ({final}/{total}):\n{notifiers[0].tail()}")
            time.sleep(0.5)
        result["wall"] = round(time.monotonic() - began, 1)
        result["cpu_seconds"] = {k: round(v - cpu_before.get(k, 0.0), 1) for k, v in _cpu(started).items()}
        result |= measure(env["DATABASE_URL"])
        result["simulators"] = _sim_counts(sims)
        if args.saturation:
            result["saturation"] = saturation(env, apps, notifiers, args.saturation)
        result["pass"] = (
            result["states"].get("delivered", 0) == args.n
            and result["rate"] >= MIN_RATE
            and result["inbox_p99"] < MAX_P99
        )
        print(result, flush=True)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_all(started, db)
    return write_report(args.out, render, result, result["pass"])


if __name__ == "__main__":
    sys.exit(main())
