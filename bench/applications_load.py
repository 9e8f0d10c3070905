"""The application scenarios of `python -m bench.run`: `GET /v1/applications/{id}` and submit,
on the tables as a fresh deployment has them and again once they hold a million applications.

Data comes from bench/applications_data.py (in its own process, production environment): the
citizens, their template drafts and the GET citizen's applications (`setup`), complete drafts
copied from the templates on demand (`drafts`, like the refresh scenario's tokens: each is
submitted once) and the million-row fill (`fill`). The load is wrk with bench/lua/app_get.lua
and bench/lua/submit.lua. The acceptance block and its report lines live here too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.infra import ROOT, BenchError, Gunicorn

MB = 1_000_000  # as bench/report.py's

# (key, label, request, Lua script). The *_1m ones run after the fill, on the big table.
_GET, _SUBMIT = "GET /v1/applications/{id}", "POST /v1/applications/{id}/submit"
SCENARIOS = (
    ("application_get", "yiwang application detail, ES256 Bearer", _GET, "app_get.lua"),
    ("application_submit", "yiwang application submit (validate + insert + outbox + idempotency)", _SUBMIT,
     "submit.lua"),
    ("application_get_1m", "yiwang application detail, 1M applications", _GET, "app_get.lua"),
    ("application_submit_1m", "yiwang application submit, 1M applications", _SUBMIT, "submit.lua"),
)  # fmt: skip
FRESH = ("application_get", "application_submit")  # the acceptance block needs both
BIG = ("application_get_1m", "application_submit_1m")
# Applications issue acceptance: submit on PostgreSQL at >= 0.12x bare-Flask rps with p99 < 150 ms
# at 32 connections, GET /v1/applications/{id} at >= 0.3x, and both p99s within 1.5x of
# themselves when the table holds 1,000,000 applications.
MIN_SUBMIT_RATIO = 0.12
MAX_SUBMIT_P99_MS = 150.0
MIN_GET_RATIO = 0.3
MAX_P99_GROWTH = 1.5
BIG_ROWS = 1_000_000
MAX_OTHER_CPU_PCT = 10.0  # as bench/report.py's
CITIZENS = 16  # each with its own template; the drafts are shared out round-robin
GET_APPS = 40  # the GET citizen's applications (three in four submitted)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the application scenarios."""
    p.add_argument(
        "--applications-rows", type=int, default=BIG_ROWS, metavar="N",
        help=f"fill the applications table to N rows for the *_1m scenarios (0: skip them; {BIG_ROWS:,})",
    )  # fmt: skip


def ttl_seconds(args: argparse.Namespace) -> int:
    """What the application scenarios add to the run (the access tokens must outlive it)."""
    per_scenario = (args.duration + args.warmup) * 2  # warm-up, load, seeding drafts
    return len(SCENARIOS) * per_scenario + args.applications_rows // 2000 + 300


def _data(env: dict[str, str], *args: str, timeout: int = 600) -> dict:
    """Run bench.applications_data in its own process (the fill's progress goes to our stderr)."""
    cmd = [sys.executable, "-m", "bench.applications_data", *args]
    stderr = None if args[0] == "fill" else subprocess.PIPE
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"bench.applications_data {args[0]} did not finish within {timeout} s") from exc
    if proc.returncode != 0:
        raise BenchError(f"bench.applications_data {args[0]} failed:\n{(proc.stderr or '(above)')[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Drafts:
    """Complete drafts copied from the templates on demand; each is submitted once.

    Same interface as bench.run.RefreshTokens: run_scenario sizes the measured run from its
    warm-up's rate (3x the rate times the duration, plus 2,000).
    """

    def __init__(self, env: dict[str, str], work: Path, setup_file: Path) -> None:
        self.env, self.work, self.setup_file, self.batches, self.made = env, work, setup_file, 0, 0

    def files(self, count: int, threads: int) -> str:
        """Add `count` drafts split over the wrk threads; returns the file prefix."""
        self.batches += 1
        prefix = self.work / f"drafts.{self.batches}"
        _data(self.env, "drafts", str(self.setup_file), str(prefix), str(count), str(threads))
        self.made += count
        return str(prefix)


class Applications:
    """The application scenarios of one run: data, preflight, load and results."""

    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env, self.work = env, work
        self.setup_file = work / "applications.json"
        self.token_file, self.ids_file = work / "application.token", work / "application.ids"
        self.drafts = Drafts(env, work, self.setup_file)
        self.info: dict = {}

    @staticmethod
    def selected(keys: list[str], args: argparse.Namespace) -> list[str]:
        """The application scenarios this run measures, in order."""
        big = args.applications_rows > 0
        return [k for k, *_ in SCENARIOS if k in keys and (big or k not in BIG)]

    def setup(self) -> None:
        """Citizens, templates and the GET citizen's applications (imports the seed catalog if
        the run has not imported one)."""
        print("seeding the application scenarios' citizens and drafts", flush=True)
        started = time.monotonic()
        summary = _data(self.env, "setup", str(self.setup_file), str(CITIZENS), str(GET_APPS))
        data = json.loads(self.setup_file.read_text())
        _write_secret(self.token_file, data["citizens"][0]["token"] + "\n")
        self.ids_file.write_text("\n".join(data["get_ids"]) + "\n")
        seconds = round(time.monotonic() - started, 1)
        self.info = summary | {"service_code": data["service_code"], "setup_seconds": seconds}
        print(f"  {summary['citizens']} citizens verified at L3 with a complete draft each;"
              f" {summary['get_ids']} applications of the first for GET ({seconds} s)",
              flush=True)  # fmt: skip

    def preflight(self, server: Gunicorn) -> None:
        """Fail before minutes of load if GET or submit does not answer 200."""
        data = json.loads(self.setup_file.read_text())
        token = data["citizens"][0]["token"]
        status, body = _call(server, "GET", f"/v1/applications/{data['get_ids'][0]}", token)
        if status != 200:
            raise BenchError(f"GET /v1/applications/{{id}} answered {status}, not 200: {body[:500]}")
        prefix = self.drafts.files(1, 1)
        app_id, version, token = Path(prefix + ".0").read_text().split()
        body_out = {"consent": {"accepted": True, "text_version": version}}
        status, body = _call(server, "POST", f"/v1/applications/{app_id}/submit", token, body_out)
        if status != 200 or json.loads(body).get("status") != "submitted":
            raise BenchError(f"POST /v1/applications/{{id}}/submit answered {status}, not 200: {body[:800]}")

    def fill(self, rows: int) -> None:
        """Fill the applications table to `rows` (bench.applications_data fill)."""
        print(f"filling the applications table to {rows:,} rows", flush=True)
        started = time.monotonic()
        self.info["fill"] = _data(self.env, "fill", str(rows), timeout=1800)
        self.info["fill"]["wall_seconds"] = round(time.monotonic() - started, 1)
        f = self.info["fill"]
        print(f"  {f['rows']:,} applications, {f['tables']['application_events']:,} timeline events,"
              f" {f['tables']['forwarding_outbox']:,} outbox rows, database {f['database_size']}, in"
              f" {f['wall_seconds']} s (fill {f['fill_seconds']} s, indexes {f['index_seconds']} s,"
              f" VACUUM {f['vacuum_seconds']} s)", flush=True)  # fmt: skip

    def run(
        self, args: argparse.Namespace, keys: list[str], run_scenario: Callable, server: Gunicorn,
        wrk: str, threads: int, ours: Callable[[], list[int]],
    ) -> tuple[dict[str, dict], list[int]]:  # fmt: skip
        """Measure the selected application scenarios (filling the table before the first *_1m
        one); their results and the peak worker RSS of each, for bench.run's table and memory."""
        results, peaks = {}, []
        info = {key: (label, request, script) for key, label, request, script in SCENARIOS}
        for key in keys:
            label, request, script = info[key]
            if key in BIG and "fill" not in self.info:
                self.fill(args.applications_rows)
            submit = script == "submit.lua"
            script_args = [] if submit else [str(self.token_file), str(self.ids_file)]
            path = "/v1/applications"  # the scripts set each request's path
            print(f"scenario {key}: {request} for {args.duration} s", flush=True)
            result, sampler = run_scenario(
                args, wrk, server, script, path, script_args, self.drafts if submit else None, threads, ours
            )
            peaks.append(sampler.peak())
            results[key] = {"label": label, "request": request} | result.as_dict()
            results[key]["rss_peak_mb"] = round(sampler.peak() / MB, 1)
            print(f"  {result.rps:.0f} rps, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms,"
                  f" non-2xx {result.non_2xx}, socket errors {result.socket_errors},"
                  f" statuses {result.statuses},"
                  f" drafts used {result.tokens_used} (exhausted {result.tokens_exhausted}),"
                  f" requests per worker {result.per_worker}, CPU busy {result.cpu_busy_pct}%"
                  f" (not the benchmark: {result.cpu_other_pct}%)", flush=True)  # fmt: skip
        self.info |= {"citizens": CITIZENS, "get_apps": GET_APPS, "drafts_made": self.drafts.made}
        return results, peaks

    def report_data(self, results: dict) -> dict:
        """What the report gets: the setup facts and, with both fresh-table scenarios, the verdict."""
        data = {"applications": self.info}
        if "application_get" in results and "application_submit" in results:
            data["applications_acceptance"] = applications_acceptance(results, self.info)
        return data


def _write_secret(path: Path, text: str) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _call(server: Gunicorn, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, str]:
    import uuid

    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers |= {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    request = urllib.request.Request(server.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"{method} {path} failed: {exc}") from exc


# --- acceptance and report ------------------------------------------------------------------------


def _errors(r: dict) -> int:
    statuses = r.get("statuses") or {}
    wrong = sum(n for status, n in statuses.items() if status != "200")
    return r["non_2xx"] + r["socket_errors"] + wrong + r.get("tokens_exhausted", 0)


def applications_acceptance(results: dict, info: dict) -> dict:
    """The applications issue's acceptance lines, computed from this run (the *_1m lines fail
    when the big table was not measured)."""
    bare = results["bare"]["rps"]
    get, submit = results["application_get"], results["application_submit"]
    submit_ratio = submit["rps"] / bare if bare else 0.0
    get_ratio = get["rps"] / bare if bare else 0.0
    rows = (info.get("fill") or {}).get("rows", 0)

    def growth(key: str, small: dict) -> dict:
        big = results.get(key)
        if big is None:
            return {"value": None, "limit": MAX_P99_GROWTH, "ok": False, "p99_ms": None}
        value = big["p99_ms"] / small["p99_ms"] if small["p99_ms"] else float("inf")
        return {"value": round(value, 3), "limit": MAX_P99_GROWTH, "ok": value <= MAX_P99_GROWTH,
                "p99_ms": big["p99_ms"]}  # fmt: skip

    keys = [k for k, *_ in SCENARIOS if k in results]
    errors = {k: _errors(results[k]) for k in keys}
    other = max(results[k].get("cpu_other_pct", 0.0) for k in ("bare", *keys))
    checks = {
        "submit_ratio": {"value": round(submit_ratio, 3), "limit": MIN_SUBMIT_RATIO,
                         "ok": submit_ratio >= MIN_SUBMIT_RATIO},
        "submit_p99_ms": {"value": submit["p99_ms"], "limit": MAX_SUBMIT_P99_MS,
                          "ok": submit["p99_ms"] < MAX_SUBMIT_P99_MS},
        "get_ratio": {"value": round(get_ratio, 3), "limit": MIN_GET_RATIO, "ok": get_ratio >= MIN_GET_RATIO},
        "rows": {"value": rows, "limit": BIG_ROWS, "ok": rows >= BIG_ROWS},
        "get_p99_growth": growth("application_get_1m", get),
        "submit_p99_growth": growth("application_submit_1m", submit),
        # Socket errors, statuses >= 400, any status but 200 in the access log, drafts run out.
        "errors": {"value": sum(errors.values()), "limit": 0, "ok": not any(errors.values()),
                   "by_scenario": errors},
        "other_cpu_pct": {"value": other, "limit": MAX_OTHER_CPU_PCT, "ok": other <= MAX_OTHER_CPU_PCT},
    }  # fmt: skip
    return {"checks": checks, "passed": all(c["ok"] for c in checks.values())}


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def acceptance_lines(data: dict, mark: dict[bool, str]) -> list[str]:
    """The report's block for the applications acceptance."""
    acc, cfg = data["applications_acceptance"], data["config"]
    c = acc["checks"]
    results = data["results"]

    def grown(name: str, key: str) -> str:
        g = c[key]
        small = results["application_get" if "get" in key else "application_submit"]["p99_ms"]
        if g["value"] is None:
            return (
                f"- {name} p99 at {BIG_ROWS:,} applications: not measured (`--applications-rows 0`): **fail**"
            )
        rows = c["rows"]["value"]
        return (f"- {name} p99 at {rows:,} applications {_ms(g['p99_ms'])} ms, {g['value']:.2f}× the"
                f" {_ms(small)} ms of the fresh table (≤ {MAX_P99_GROWTH}×): {mark[g['ok']]}")  # fmt: skip

    split = ", ".join(f"{k} {n}" for k, n in c["errors"]["by_scenario"].items())
    return [
        "",
        "## Acceptance: applications",
        "",
        "> submit (validate + insert + outbox + idempotency) on PostgreSQL at ≥ 0.12× bare Flask with"
        " p99 < 150 ms at 32 connections, `GET /v1/applications/{id}` at ≥ 0.3×, and both p99s within"
        " 1.5× of themselves when the table holds 1,000,000 applications",
        "",
        f"**{'PASS' if acc['passed'] else 'FAIL'}** at {cfg['connections']} connections:",
        "",
        f"- submit rps ratio {c['submit_ratio']['value']:.3f}× (≥ {MIN_SUBMIT_RATIO}):"
        f" {mark[c['submit_ratio']['ok']]}",
        f"- submit p99 {_ms(c['submit_p99_ms']['value'])} ms (< {MAX_SUBMIT_P99_MS:.0f} ms):"
        f" {mark[c['submit_p99_ms']['ok']]}",
        f"- `GET /v1/applications/{{id}}` rps ratio {c['get_ratio']['value']:.3f}× (≥ {MIN_GET_RATIO}):"
        f" {mark[c['get_ratio']['ok']]}",
        f"- applications in the table for the big-table scenarios: {c['rows']['value']:,} (≥ {BIG_ROWS:,}):"
        f" {mark[c['rows']['ok']]}",
        grown("GET", "get_p99_growth"),
        grown("submit", "submit_p99_growth"),
        f"- errors, non-2xx, statuses other than 200 and drafts run out: {c['errors']['value']} ({split}):"
        f" {mark[c['errors']['ok']]}",
        f"- CPU used by other processes during the baseline and the application scenarios, at most"
        f" {c['other_cpu_pct']['value']}% (≤ {MAX_OTHER_CPU_PCT:.0f}%, else the figures are not comparable:"
        f" rerun on a quiet machine): {mark[c['other_cpu_pct']['ok']]}",
    ]


def setup_lines(info: dict) -> list[str]:
    """The report's notes on how the application scenarios were set up."""
    lines = [
        f"- Applications: {info.get('citizens')} citizens, each verified at L3 in person (the hall path)"
        f" with an app session. `GET /v1/applications/{{id}}` rotates over the {info.get('get_apps')}"
        " applications of the first citizen (three in four submitted, the rest drafts; all of 社会保障卡申领"
        f" {info.get('service_code')}, created, autosaved, materials attached and submitted through the"
        " application services), with that citizen's token: each request verifies the token and checks the"
        " session in one Redis round trip that also fetches the application's cached view"
        " (domain/applications/detail_view.py), and serves it when it is this account's, in this language,"
        " rendered today; the first read of each application after a change reads the application with"
        " its materials, files and data-sharing state, decrypts the form data, renders the full view and"
        " caches it (nothing changes the applications during the load, so after the warm-up every read"
        " is served from the cache).",
        "- Submit sends each complete draft once (its own Idempotency-Key, the consent body with the item's"
        " consent text version), round-robin over the citizens: each request checks the idempotency key"
        " in Redis, locks the application (reading the account's identity level with it), validates the"
        " data (JSON Schema), materials, identity level and consent, takes the case number (one upsert on"
        " the item's daily serial row, committed on its own connection: every submission of the run is for"
        " the same item on the same day, the worst case for that row), then writes in one transaction the"
        " consent record, the timeline event, the outbox row, the data-use ledger line and the audit event"
        " (one statement) and the application's new state, stores the response for the key and renders"
        " the full view. The drafts are copies of one complete draft per citizen"
        " (application row, `draft` event, two materials reusing that draft's uploaded files), inserted"
        " in bulk before each load; their number is sized from the warm-up's rate"
        f" ({info.get('drafts_made', 0):,} made in the run).",
    ]
    fill = info.get("fill")
    if fill:
        t = fill["tables"]
        lines.append(
            f"- Big table: bench/applications_data.py filled the applications table to {fill['rows']:,} rows"
            f" ({t['accounts']:,} accounts, 1 to 300 applications each; {t['application_events']:,} timeline"
            f" events, {t['application_materials']:,} materials, {t['forwarding_outbox']:,} outbox rows,"
            f" {t['consent_records']:,} consent records; database {fill['database_size']}) in"
            f" {fill['wall_seconds']} s ({fill['workers']} connections; fill {fill['fill_seconds']} s,"
            f" rebuilding {len(fill['indexes_rebuilt'])} secondary indexes {fill['index_seconds']} s,"
            f" VACUUM ANALYZE {fill['vacuum_seconds']} s) after the fresh-table scenarios, with the servers"
            " running. Generated rows share one ciphertext of form data and one provenance; materials are"
            " e-certificate and shared-data references (no files); no audit events (see the module's"
            " docstring for every shortcut)."
        )
    return lines
