"""`python -m bench.identity_load`: real-name verifications as fast as the server takes them.

Run by the harness in its own process (like wrk): a verification is two dependent requests, so
wrk's one-request model does not fit. WORKERS threads each keep one HTTP/1.1 keep-alive
connection and loop over their share of the citizens in ACCOUNTS_FILE (the JSON lines
`bench.seed verifiers` wrote), for DURATION seconds:

  POST /v1/identity/verifications {method, name, id_number, consent}  → 201 + verification id
  POST /v1/identity/verifications/{id}/complete                        → 200, status "passed"

A verification counts only when complete answers 200 with status "passed"; every other answer
is counted by what it was ("start 429", "complete 202 pending", "complete 200 failed",
"error ConnectionResetError", ...). Each request carries the citizen's own X-Forwarded-For
address. The harness puts the provider's simulator in auto-pass mode and registers every
citizen's person there first.

Prints one line `BENCH_JSON {...}`: verifications, per_second, pair latencies (p50/p90/p99/max
in ms, start to complete answered), start and complete latencies, outcomes, requests and the
process's own CPU seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

MARKER = "BENCH_JSON "
PASSED = "passed"
LATE = "passed after the deadline (not counted)"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Worker(threading.Thread):
    """One keep-alive connection doing start + complete for its citizens in turn."""

    def __init__(
        self, base_url: str, accounts: list[dict], method: str, consent: dict, deadline: float
    ) -> None:
        super().__init__(daemon=True)
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.accounts, self.method, self.consent, self.deadline = accounts, method, consent, deadline
        self.conn: http.client.HTTPConnection | None = None
        self.outcomes: Counter[str] = Counter()
        self.pairs: list[float] = []  # seconds, passed verifications only
        self.starts: list[float] = []
        self.completes: list[float] = []
        self.requests = 0

    def _post(self, path: str, body: dict | None, account: dict) -> tuple[int, dict]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        headers = {
            "Authorization": f"Bearer {account['token']}", "Accept": "application/json",
            "Content-Type": "application/json", "X-Forwarded-For": account["ip"],
        }  # fmt: skip
        payload = json.dumps(body or {}, ensure_ascii=False).encode()
        self.requests += 1
        try:
            self.conn.request("POST", path, body=payload, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if resp.will_close:
            self.conn.close()
            self.conn = None
        try:
            return resp.status, json.loads(raw) if raw else {}
        except ValueError:
            return resp.status, {}

    def one(self, account: dict) -> None:
        """One verification: start, then complete; record how it ended."""
        t0 = time.monotonic()
        body = {"method": self.method, "name": account["name"], "id_number": account["id_number"],
                "consent": self.consent}  # fmt: skip
        try:
            status, answer = self._post("/v1/identity/verifications", body, account)
        except (OSError, http.client.HTTPException) as exc:
            self.outcomes[f"start error {type(exc).__name__}"] += 1
            return
        t1 = time.monotonic()
        self.starts.append(t1 - t0)
        verification = answer.get("verification") or {}
        if status != 201 or verification.get("status") != "pending" or not verification.get("id"):
            self.outcomes[f"start {status} {verification.get('status') or _code(answer)}"] += 1
            return
        path = f"/v1/identity/verifications/{verification['id']}/complete"
        try:
            status, answer = self._post(path, None, account)
        except (OSError, http.client.HTTPException) as exc:
            self.outcomes[f"complete error {type(exc).__name__}"] += 1
            return
        t2 = time.monotonic()
        self.completes.append(t2 - t1)
        result = (answer.get("verification") or {}).get("status")
        if status == 200 and result == PASSED and t2 > self.deadline:
            self.outcomes[LATE] += 1  # the load was over: neither a verification nor an error
        elif status == 200 and result == PASSED:
            self.outcomes[PASSED] += 1
            self.pairs.append(t2 - t0)
        else:
            self.outcomes[f"complete {status} {result or _code(answer)}"] += 1

    def run(self) -> None:
        i = 0
        while time.monotonic() < self.deadline:
            self.one(self.accounts[i % len(self.accounts)])
            i += 1
        if self.conn is not None:
            self.conn.close()


def _code(answer: dict) -> str:
    return str((answer.get("error") or {}).get("code") or "no body")


def run(
    base_url: str, accounts: list[dict], *, method: str, consent: dict, workers: int, duration: float
) -> dict:
    """Load for `duration` seconds with `workers` threads; the summary the harness reads."""
    cpu0 = time.process_time()
    started = time.monotonic()
    deadline = started + duration
    threads = [Worker(base_url, accounts[i::workers], method, consent, deadline)
               for i in range(min(workers, len(accounts)))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 30)
    seconds = max(duration, 1e-9)
    outcomes: Counter[str] = Counter()
    pairs, starts, completes = [], [], []
    for t in threads:
        outcomes.update(t.outcomes)
        pairs += t.pairs
        starts += t.starts
        completes += t.completes
    done = outcomes.get(PASSED, 0)

    def ms(values: list[float]) -> dict:
        return {f"p{p}_ms": round(percentile(values, p) * 1000, 2) for p in (50, 90, 99)} | {
            "max_ms": round(max(values, default=0.0) * 1000, 2)
        }

    return {
        "method": method, "workers": len(threads), "accounts": len(accounts), "seconds": round(duration, 2),
        "verifications": done, "per_second": round(done / seconds, 1),
        **ms(pairs), "start": ms(starts), "complete": ms(completes),
        "requests": sum(t.requests for t in threads),
        "outcomes": dict(sorted(outcomes.items())),
        "errors": sum(n for k, n in outcomes.items() if k not in (PASSED, LATE)),
        "passed_after_deadline": outcomes.get(LATE, 0),
        "client_cpu_seconds": round(time.process_time() - cpu0, 2),
        "wall_seconds": round(time.monotonic() - started, 2),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point for the harness."""
    p = argparse.ArgumentParser(prog="python -m bench.identity_load", description=__doc__.split("\n\n")[0])
    p.add_argument("base_url")
    p.add_argument("accounts_file", help="JSON lines from `python -m bench.seed verifiers`")
    p.add_argument("--method", default="tencent_faceid")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--consent-version", default="face-2026-12")
    args = p.parse_args(argv)
    accounts = [
        json.loads(line) for line in Path(args.accounts_file).read_text().splitlines() if line.strip()
    ]
    if not accounts:
        p.error(f"{args.accounts_file} holds no accounts")
    consent = {"accepted": True, "text_version": args.consent_version}
    summary = run(args.base_url, accounts, method=args.method, consent=consent, workers=args.workers,
                  duration=args.duration)  # fmt: skip
    print(MARKER + json.dumps(summary, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
