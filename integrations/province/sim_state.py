"""The province simulator's memory: cases and their stage events, faults, counters, callbacks.

Thread-safe (the simulator is served by a threaded server). Callbacks go out from one
dispatcher thread, retried with backoff until yiwang answers 200 or they are too old.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from integrations.province import signing

CST = timezone(timedelta(hours=8))
STAGE_CODES = {"accepted": {"code": "1"}, "not_accepted": {"code": "4"}, "supplement": {"code": "3"}}
RESULT_CODES = {"approved": "6", "denied": "7"}
FAULT_DEFAULTS: dict[str, Any] = {
    "error_rate": 0.0, "timeout_rate": 0.0, "timeout_seconds": 10.0, "timeout_record": "random",
    "reset_rate": 0.0, "latency_ms": 0, "rate_limit": None, "outage": False, "outage_until": 0.0,
    "duplicate_callbacks": 0.0, "reorder_callbacks": 0.0, "seed": None,
}  # fmt: skip


def now_iso() -> str:
    return datetime.now(CST).isoformat(timespec="seconds")


@dataclass
class Case:
    sblsh: str
    item_code: str
    applicant: dict[str, Any]
    stage: str = "received"
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)  # "version:action" -> receipt
    events: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    timers: list[threading.Timer] = field(default_factory=list)
    materials: list[dict[str, Any]] = field(default_factory=list)  # the latest version's, as listed

    @property
    def accepted(self) -> bool:
        """Accepted (受理) at some point: acceptance happens once."""
        return any(e["stage"] in ("accepted", "in_review") for e in self.events)

    def view(self) -> dict[str, Any]:
        return {
            "sblsh": self.sblsh, "item_code": self.item_code, "stage": self.stage,
            "versions": sorted({r["version"] for r in self.receipts.values()}),
            "receipts": list(self.receipts.values()), "duplicates": self.duplicates,
            "applicant": self.applicant, "events": self.events, "materials": self.materials,
        }  # fmt: skip


class SimState:
    def __init__(
        self, creds: signing.Credentials, callback_url: str, rate_limit: float, schedule: str
    ) -> None:
        self.creds = creds
        self.lock = threading.RLock()
        self.default_rate = rate_limit
        self.default_callback_url = callback_url
        self.schedule_text = schedule
        self.nonces = signing.MemoryNonceStore()
        self.http = httpx.Client(timeout=5.0)
        self.outgoing: list[tuple[float, float, int, dict[str, Any]]] = []  # (due, first try, tries, event)
        self.wake = threading.Condition(self.lock)
        threading.Thread(target=self._dispatch, daemon=True).start()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            for case in getattr(self, "cases", {}).values():
                for t in case.timers:
                    t.cancel()
            self.cases: dict[str, Case] = {}
            self.serial = 0
            self.faults = dict(FAULT_DEFAULTS, rate_limit=self.default_rate)
            self.rng = random.Random()
            self.callback_url = self.default_callback_url
            self.schedule = parse_schedule(self.schedule_text)
            self.counts: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.auth_failures: Counter[str] = Counter()
            self.callbacks: Counter[str] = Counter()
            self.held: dict[str, dict[str, Any]] = {}  # sblsh -> event held back (reorder)
            self.evaluations: dict[str, dict[str, Any]] = {}  # evaluation id -> the push received
            self.outgoing.clear()
            self.tokens, self.tokens_at = float(self.default_rate or 0), time.monotonic()

    def set_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for key, value in changes.items():
                if key not in FAULT_DEFAULTS:
                    raise KeyError(key)
                self.faults[key] = value
            if changes.get("seed") is not None:
                self.rng = random.Random(changes["seed"])
            return dict(self.faults)

    def roll(self, name: str) -> bool:
        with self.lock:
            rate = float(self.faults.get(name) or 0)
            return rate > 0 and self.rng.random() < rate

    def take_token(self) -> bool:
        """The simulator's own rate limit (token bucket, burst of one second)."""
        with self.lock:
            rate = self.faults.get("rate_limit")
            if not rate:
                return True
            now = time.monotonic()
            self.tokens = min(float(rate), self.tokens + (now - self.tokens_at) * float(rate))
            self.tokens_at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False

    # --- cases and events ----------------------------------------------------------------

    def receipt_no(self) -> str:
        self.serial += 1
        return f"SJ{datetime.now(CST):%Y%m%d}{self.serial:08d}"

    def add_event(self, case: Case, stage: str, *, send: bool = True, **extra: Any) -> dict[str, Any]:
        """Record the case's next stage and queue its callback (caller holds the lock)."""
        event = {
            "event_id": f"EV{uuid.uuid4().hex[:20]}", "sblsh": case.sblsh, "seq": len(case.events) + 1,
            "stage": stage, "occurred_at": now_iso(), **STAGE_CODES.get(stage, {}),
            **{k: v for k, v in extra.items() if v is not None},
        }  # fmt: skip
        case.events.append(event)
        case.stage = "in_review" if stage == "special_end" else stage
        if send:
            self._queue(event)
        return event

    def _queue(self, event: dict[str, Any]) -> None:
        held = self.held.pop(event["sblsh"], None)
        if self.roll("reorder_callbacks") and held is None:
            self.held[event["sblsh"]] = event  # goes out after the case's next event
            threading.Timer(2.0, self._release, args=(event["sblsh"], event["event_id"])).start()
        else:
            self._push(event)
        if held is not None:
            self._push(held)
        if self.roll("duplicate_callbacks"):
            self._push(event)

    def _release(self, sblsh: str, event_id: str) -> None:
        with self.lock:
            held = self.held.get(sblsh)
            if held is not None and held["event_id"] == event_id:
                self._push(self.held.pop(sblsh))

    def _push(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        self.outgoing.append((now, now, 0, event))
        self.callbacks["pending"] += 1
        self.wake.notify()

    def schedule_case(self, case: Case, move: Any) -> None:
        for stage, delay in self.schedule:
            timer = threading.Timer(delay, move, args=(case.sblsh, stage))
            timer.daemon = True
            case.timers.append(timer)
            timer.start()

    # --- callbacks -----------------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            with self.lock:
                while not self.outgoing:
                    self.wake.wait(1.0)
                self.outgoing.sort(key=lambda item: item[0])
                due, first, tries, event = self.outgoing[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.wake.wait(min(wait, 0.5))
                    continue
                self.outgoing.pop(0)
                url = self.callback_url
            ok = self._send(url, event)
            with self.lock:
                if ok:
                    self.callbacks["pending"] -= 1
                    self.callbacks["delivered"] += 1
                elif time.monotonic() - first > 600:
                    self.callbacks["pending"] -= 1
                    self.callbacks["failed"] += 1
                else:
                    self.callbacks["retried"] += 1
                    delay = min(5.0, 0.2 * 2 ** min(5, tries))
                    self.outgoing.append((time.monotonic() + delay, first, tries + 1, event))

    def _send(self, url: str, event: dict[str, Any]) -> bool:
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = signing.sign_request(self.creds, "POST", urlsplit(url).path, body)
        headers["Content-Type"] = "application/json"
        try:
            resp = self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            with self.lock:
                self.callbacks["answered_error"] += 1
            return False
        try:  # yiwang signs its answers as the province signs its own (docs/province.md)
            signing.verify_response(self.creds, resp.status_code, resp.headers, resp.content, now=time.time())
        except signing.SignatureError:
            with self.lock:
                self.callbacks["answered_unsigned"] += 1
            return False
        with self.lock:
            self.callbacks[f"answered_{resp.status_code}"] += 1
        return resp.status_code == 200


def parse_schedule(text: str | None) -> list[tuple[str, float]]:
    """ "accepted:20,completed:60" → [("accepted", 20.0), ("completed", 60.0)]; "off" → []."""
    out: list[tuple[str, float]] = []
    if (text or "").strip().lower() in ("off", "manual", "none"):
        return out
    for part in (text or "").split(","):
        if ":" in part:
            stage, _, delay = part.partition(":")
            out.append((stage.strip(), float(delay)))
    return out


def id_number_ok(value: str) -> bool:
    """18 characters, 17 ASCII digits and a GB 11643 check character (full-width or other Unicode
    digits are refused, as the platform's own check does)."""
    if len(value) != 18 or not (value[:17].isascii() and value[:17].isdigit()):
        return False
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()
