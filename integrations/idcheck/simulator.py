"""Public-security ID two-element check (公安身份二要素核验) simulator: name + ID number over HTTP JSON.

There is no public national standard for this service, so yiwang defines the protocol (full text:
docs/integrations/idcheck.md); the production client (integrations/idcheck/client.py) runs against
this simulator unchanged with `IDCHECK_BASE_URL=http://127.0.0.1:9105/`. Tests serve it on a random
port; `python -m cli.simulators idcheck --port 9105` serves it for `make run`.

API: POST /v1/verify/two-factor, Content-Type application/json.
- Headers X-App-Id, X-Timestamp (unix seconds, ±300 s of the wall clock plus the /_sim/advance
  offset), X-Nonce (16-64 printable ASCII, single use per app within the window), X-Signature =
  lowercase hex HMAC-SM3(app_secret, "POST\\n/v1/verify/two-factor\\n<timestamp>\\n<nonce>\\n
  <sha256 hex of body>"). The app id/secret come from IDCHECK_APP_ID / IDCHECK_APP_SECRET.
- Body {"request_id": 1-64 of [A-Za-z0-9_-], "purpose": 1-64 characters, "payload"}; no other
  keys. payload = base64(nonce12 | SM4-GCM ciphertext | tag16) of {"name", "id_number"}, key = the
  first 16 bytes of HMAC-SM3(app_secret, "idcheck-payload-key-v1"), associated data = request_id.
- Every answer is HTTP 200 with {"code": int (0 = processed), "message", "request_id",
  "serial_no" (核验流水号, null on errors), "result": {"code", "message"} | null}, signed with the
  app's secret: headers X-Timestamp, X-Nonce, X-Signature = HMAC-SM3 over "<status>\\n<timestamp>
  \\n<nonce>\\n<sha256 hex of body>". A 1004 answer (unknown app) cannot be signed and is not.
- Envelope codes, checked in this order: 1004 unknown app; 1005 malformed X-Timestamp/X-Nonce or
  wrong content type; 1001 signature missing or invalid; 1002 timestamp out of window; 1003 nonce
  replayed; 1005 invalid body, field or undecryptable payload; then injected faults (1006 quota
  exceeded, 5000 internal error, 5003 population database unavailable: the retryable ones).
- Result codes: "0" 一致 (registered person, same name), "1" 不一致 (ID registered with another name),
  "2" 库中无此号 (ID unknown), "3" 身份证号码格式错误 (not 17 digits + digit/X, impossible or
  future birth date, region starting with 0, or a wrong GB 11643 check character).
  The population is integrations/realname/people.py (DEMO_PEOPLE plus POST /_sim/people).

Control API (JSON, under /_sim/, unsigned):
- POST /_sim/reset                     forget people added, nonces, counts, faults, clock offset
- POST /_sim/people {name, id_number}  register a real person
- GET  /_sim/calls                     {total, ok, by_action, errors {code: n}, results {code: n}, http_5xx}
- GET  /_sim/requests                  the last 100 requests: request_id, purpose, code, result (no
       name or ID number)
- GET|POST /_sim/faults {down: bool (every API call answers HTTP 503), latency_ms: n, errors:
       [envelope codes answered by the next authenticated calls, in order], bad_response_signature:
       bool (responses signed with a wrong key), malformed_response: bool (a signed non-JSON body)}
- POST /_sim/advance {seconds}          move the simulator's clock (timestamp window, birth dates)
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from core import clock
from integrations.idcheck import signing
from integrations.realname.people import MATCH, NAME_MISMATCH, PeopleRegister

ENVELOPE_MESSAGES = {
    0: "成功",
    1001: "签名验证失败",
    1002: "时间戳超出有效范围",
    1003: "随机数重复使用",
    1004: "未知的应用",
    1005: "参数缺失或无效",
    1006: "调用量超出配额",
    5000: "系统内部错误",
    5003: "公安人口信息库服务不可用",
}
RESULT_MESSAGES = {"0": "一致", "1": "不一致", "2": "库中无此号", "3": "身份证号码格式错误"}
BODY_KEYS = {"request_id", "purpose", "payload"}
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NONCE = re.compile(rf"[\x21-\x7e]{{{signing.MIN_NONCE_LENGTH},{signing.MAX_NONCE_LENGTH}}}")
_ID_SHAPE = re.compile(r"[1-9][0-9]{16}[0-9X]")  # ASCII digits only
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_FAULT_KEYS = {"down", "latency_ms", "errors", "bad_response_signature", "malformed_response"}
_WRONG_KEY = b"not-the-app-secret"
_DOWN_PAGE = "<html><body><h1>503 Service Unavailable</h1></body></html>"


def id_number_well_formed(id_number: str, today: date) -> bool:
    """GB 11643: 17 digits + check character (uppercase X), a real birth date not after today."""
    if not _ID_SHAPE.fullmatch(id_number):
        return False
    try:
        born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > today:
        return False
    total = sum(int(d) * w for d, w in zip(id_number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == id_number[17]


def _default_faults() -> dict[str, Any]:
    return {"down": False, "latency_ms": 0, "errors": [], "bad_response_signature": False,
            "malformed_response": False}  # fmt: skip


@dataclass
class SimState:
    """Registered apps, the population register, seen nonces, counters and faults."""

    apps: dict[str, str]
    people: PeopleRegister = field(default_factory=PeopleRegister)
    nonces: dict[tuple[str, str], float] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    results: Counter = field(default_factory=Counter)
    recent: deque = field(default_factory=lambda: deque(maxlen=100))
    faults: dict[str, Any] = field(default_factory=_default_faults)
    offset: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.people.reset()
            self.nonces.clear()
            self.calls.clear()
            self.errors.clear()
            self.results.clear()
            self.recent.clear()
            self.faults = _default_faults()
            self.offset = 0.0

    def wall_now(self) -> float:
        """Wall clock + offset: what the client signs timestamps with (time.time())."""
        return time.time() + self.offset

    def today(self) -> date:
        """The simulated date (core.clock, which tests freeze, + offset) for birth-date checks."""
        return datetime.fromtimestamp(clock.timestamp() + self.offset, tz=UTC).date()

    def use_nonce(self, app_id: str, nonce: str, now: float) -> bool:
        """Record a nonce; False if it was already used within the window (call with the lock)."""
        if len(self.nonces) > 10_000:  # forget nonces whose timestamps can no longer pass the window
            cutoff = now - 2 * signing.TIMESTAMP_WINDOW
            self.nonces = {k: t for k, t in self.nonces.items() if t >= cutoff}
        key = (app_id, nonce)
        if key in self.nonces:
            return False
        self.nonces[key] = now
        return True


class ApiError(Exception):
    """An envelope error code."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code)
        self.code, self.detail = code, detail


def _answer(
    state: SimState, secret: str | None, faults: Mapping[str, Any], payload: dict[str, Any]
) -> Response:
    """A signed JSON answer (unsigned when there is no known secret to sign with)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    if faults.get("malformed_response"):
        body = b"<html><body>gateway error</body></html>"
    resp = Response(body, 200, mimetype="application/json")
    if secret is not None:
        key = _WRONG_KEY if faults.get("bad_response_signature") else secret
        resp.headers.update(signing.response_headers(key, 200, body, timestamp=int(state.wall_now())))
    return resp


def _headers(secret: str) -> tuple[str, str]:
    """Check the authentication headers; returns (timestamp, nonce)."""
    ts, nonce = request.headers.get(signing.H_TIMESTAMP, ""), request.headers.get(signing.H_NONCE, "")
    if not (ts.isascii() and ts.isdigit()) or len(ts) > 12:
        raise ApiError(1005, "X-Timestamp must be unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise ApiError(1005, "X-Nonce must be 16-64 printable ASCII characters")
    if (request.mimetype or "") != "application/json":
        raise ApiError(1005, "Content-Type must be application/json")
    if not request.headers.get(signing.H_SIGNATURE):
        raise ApiError(1001, "X-Signature missing")
    canonical = signing.canonical_request("POST", signing.VERIFY_PATH, ts, nonce, request.get_data())
    if not signing.signatures_equal(
        signing.hmac_sm3_hex(secret, canonical), request.headers[signing.H_SIGNATURE]
    ):
        raise ApiError(1001)
    return ts, nonce


def _body() -> dict[str, Any]:
    """The parsed and checked body (before decryption)."""
    try:
        body = json.loads(request.get_data())
    except ValueError:
        raise ApiError(1005, "body is not JSON") from None
    if not isinstance(body, dict) or set(body) != BODY_KEYS:
        raise ApiError(1005, "body must have exactly request_id, purpose, payload")
    if not isinstance(body["request_id"], str) or not _REQUEST_ID.fullmatch(body["request_id"]):
        raise ApiError(1005, "invalid request_id")
    purpose = body["purpose"]
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > 64:
        raise ApiError(1005, "invalid purpose")
    if not isinstance(body["payload"], str):
        raise ApiError(1005, "invalid payload")
    return body


def _person(person: dict[str, Any]) -> tuple[str, str]:
    """The decrypted name and ID number, checked for presence and type."""
    name, id_number = person.get("name"), person.get("id_number")
    if set(person) != {"name", "id_number"} or not isinstance(name, str) or not isinstance(id_number, str):
        raise ApiError(1005, "payload must be {name, id_number} strings")
    if not name.strip() or len(name) > 64 or not id_number:
        raise ApiError(1005, "invalid name or id_number")
    return name, id_number


def _result_code(state: SimState, name: str, id_number: str) -> str:
    """The result code the population register gives for a name and ID number."""
    if not id_number_well_formed(id_number, state.today()):
        return "3"
    found = state.people.lookup(name, id_number)
    return "0" if found == MATCH else "1" if found == NAME_MISMATCH else "2"


def _verify(state: SimState) -> Response:
    with state.lock:
        state.calls["total"] += 1
        faults = {**state.faults, "errors": list(state.faults["errors"])}
    if faults["latency_ms"]:
        time.sleep(float(faults["latency_ms"]) / 1000)
    if faults["down"]:
        with state.lock:
            state.calls["http_5xx"] += 1
        return Response(_DOWN_PAGE, 503, mimetype="text/html")
    with state.lock:
        state.calls["action:verify"] += 1
    app_id = request.headers.get(signing.H_APP_ID, "")
    secret = state.apps.get(app_id)
    request_id: str | None = None
    try:
        if secret is None:
            raise ApiError(1004)
        ts, nonce = _headers(secret)
        now = state.wall_now()
        if abs(now - int(ts)) > signing.TIMESTAMP_WINDOW:
            raise ApiError(1002)
        with state.lock:
            fresh = state.use_nonce(app_id, nonce, now)
        if not fresh:
            raise ApiError(1003)
        body = _body()
        request_id = body["request_id"]
        try:
            person = signing.decrypt_payload(secret, request_id, body["payload"])
        except signing.PayloadError:
            raise ApiError(1005, "payload cannot be decrypted") from None
        name, id_number = _person(person)
        with state.lock:
            injected = state.faults["errors"].pop(0) if state.faults["errors"] else None
        if injected is not None:
            raise ApiError(int(injected), "injected fault")
        code = _result_code(state, name, id_number)
    except ApiError as exc:
        with state.lock:
            state.errors[str(exc.code)] += 1
            state.recent.append(
                {"request_id": request_id, "app_id": app_id, "code": exc.code, "result": None}
            )
        message = ENVELOPE_MESSAGES.get(exc.code, "错误") + (f": {exc.detail}" if exc.detail else "")
        return _answer(state, secret, faults, {"code": exc.code, "message": message, "request_id": request_id,
                                               "serial_no": None, "result": None})  # fmt: skip
    serial_no = uuid.uuid4().hex
    with state.lock:
        state.calls["ok"] += 1
        state.results[code] += 1
        state.recent.append({"request_id": request_id, "purpose": body["purpose"], "code": 0,
                             "result": code, "serial_no": serial_no})  # fmt: skip
    return _answer(state, secret, faults, {
        "code": 0, "message": ENVELOPE_MESSAGES[0], "request_id": request_id, "serial_no": serial_no,
        "result": {"code": code, "message": RESULT_MESSAGES[code]},
    })  # fmt: skip


def _register_control(app: Flask, state: SimState) -> None:
    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"ok": True})

    @app.post("/_sim/people")
    def people() -> Response | tuple:
        body = request.get_json(silent=True) or {}
        name, id_number = body.get("name"), body.get("id_number")
        if not isinstance(name, str) or not isinstance(id_number, str) or not name or not id_number:
            return jsonify({"error": "name and id_number are required strings"}), 400
        state.people.add(name, id_number)
        return jsonify({"ok": True})

    @app.get("/_sim/calls")
    def calls() -> Response:
        with state.lock:
            by_action = {k.split(":", 1)[1]: v for k, v in state.calls.items() if k.startswith("action:")}
            return jsonify({
                "total": state.calls["total"], "ok": state.calls["ok"], "http_5xx": state.calls["http_5xx"],
                "by_action": by_action, "errors": dict(state.errors), "results": dict(state.results),
            })  # fmt: skip

    @app.get("/_sim/requests")
    def requests_() -> Response:
        with state.lock:
            return jsonify({"requests": list(state.recent)})

    @app.route("/_sim/faults", methods=["GET", "POST"])
    def faults() -> Response | tuple:
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or set(body) - _FAULT_KEYS:
                return jsonify({"error": f"body must be an object with keys from {sorted(_FAULT_KEYS)}"}), 400
            errors = body.get("errors", [])
            if not isinstance(errors, list) or not all(
                str(e).isascii() and str(e).isdigit() and int(e) > 0 for e in errors
            ):
                return jsonify({"error": "errors must be a list of positive envelope codes"}), 400
            with state.lock:
                state.faults.update(body)
                state.faults["errors"] = (
                    [int(e) for e in errors] if "errors" in body else state.faults["errors"]
                )
        with state.lock:
            return jsonify(state.faults)

    @app.post("/_sim/advance")
    def advance() -> Response:
        seconds = float((request.get_json(silent=True) or {}).get("seconds", 0))
        with state.lock:
            state.offset += seconds
            return jsonify({"offset": state.offset})


def create_simulator(config: Mapping[str, Any]) -> Flask:
    """The simulator app, knowing the app id and secret IDCHECK_APP_ID / IDCHECK_APP_SECRET."""
    state = SimState(apps={str(config["IDCHECK_APP_ID"]): str(config["IDCHECK_APP_SECRET"])})
    state.reset()
    app = Flask("idcheck_simulator")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["idcheck_sim"] = state
    app.add_url_rule(signing.VERIFY_PATH, "verify", lambda: _verify(state), methods=["POST"])
    _register_control(app, state)
    return app


def main() -> None:
    """Serve on the host and port of IDCHECK_BASE_URL (default 127.0.0.1:9105)."""
    from urllib.parse import urlsplit

    from config import load_config
    from integrations.simulator_server import serve_forever

    cfg = vars(load_config())
    url = urlsplit(cfg["IDCHECK_BASE_URL"])
    serve_forever(create_simulator(cfg), url.hostname or "127.0.0.1", url.port or 9105)


if __name__ == "__main__":
    main()
