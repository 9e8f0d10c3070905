"""Alipay open-platform gateway simulator for identity verification (alipay.user.certify.open.*).

The production client runs against it unchanged: `ALIPAY_GATEWAY=http://127.0.0.1:9104/gateway.do`.
Tests serve it on a random port (tests/conftest.py `alipay_sim`); `python -m cli.simulators alipay
--port 9104` serves it for `make run`. Keys: it verifies requests with the application's public
key (ALIPAY_SIM_APP_PUBLIC_KEY, else the development key) and signs answers with the development
"platform" private key (integrations/alipay/dev_keys.py), whose public half the client trusts.

Gateway (GET or POST /gateway.do; parameters from the query string and/or a form body):
- Common parameters, checked in this order like the real gateway, answered with HTTP 200 and
  {"<method>_response" | "error_response": {code, msg, sub_code, sub_msg}, "sign"}:
  method missing 40001 isv.missing-method / unknown 40002 isv.invalid-method (error_response);
  app_id missing 40001 isv.missing-app-id / not ALIPAY_APP_ID 40002 isv.invalid-app-id (answered
  WITHOUT sign, as Alipay does); format other than JSON 40002 isv.invalid-format; charset other
  than utf-8 40002 isv.invalid-charset; sign_type missing 40001 isv.missing-signature-type /
  not RSA2 40002 isv.invalid-signature-type; sign missing 40001 isv.missing-signature; timestamp
  missing 40001 isv.missing-timestamp / not "yyyy-MM-dd HH:mm:ss" Beijing time within 15 minutes
  of the wall clock 40002 isv.invalid-timestamp (the window is our assumption: Alipay documents
  the format, not the tolerance); version missing 40001 isv.missing-version / not 1.0 40002
  isv.invalid-parameter; RSA2 signature 40002 isv.invalid-signature (无效签名).
- alipay.user.certify.open.initialize biz_content {outer_order_no, biz_code, identity_param,
  merchant_config} → {code 10000, msg Success, certify_id (32 hex)}. 40004
  ILLEGAL_ARGUMENT_FORMAT (参数异常) when biz_content is not a JSON object, outer_order_no is not
  1-32 letters/digits or was already used by the app (Alipay's code for a duplicate is not
  published: assumption), biz_code is not FACE (the only scene this app signed), identity_type is
  not CERT_INFO, cert_type not IDENTITY_CARD, cert_name empty, cert_no not 18 characters with a
  GB 11643 check character, return_url missing, face_reserve_strategy not reserve/never.
  The population register is not consulted here: the identity is checked during the face.
- alipay.user.certify.open.certify biz_content {certify_id}: the page the citizen's browser
  opens (same signature checks). Answers a small HTML page with one button per outcome (they
  POST to /_sim/face/perform and then go to return_url); errors as an HTML page "错误代码 <code>".
- alipay.user.certify.open.query biz_content {certify_id} → {code 10000, msg Success, passed
  "T"|"F", fail_reason?, material_info "{}"}. 40004 OPEN_CERTIFY_BILL_NOT_EXIST (无效的certify_id:
  unknown, or issued to another app), CERTIFY_ID_EXPIRED (认证已失效: not performed within 23 h,
  or performed more than 90 days ago). passed "F" without fail_reason until the citizen finishes
  (as Alipay: "F" is "not passed or not done yet"); after a failure "F" with fail_reason, or
  without one when the fail_reason extension is switched off (POST /_sim/merchant: Alipay
  returns no reason unless it enabled the extension for the merchant).

Outcomes of POST /_sim/face/perform {ref: certify_id, outcome} (fail_reason codes: see
integrations.alipay.client.FAIL_REASONS; Alipay does not publish them):
- "pass": registered name + ID → passed T; ID known with another name → F/201; unknown ID → F/202;
- "liveness_fail" → F/205; "other_person": registered identity → F/204, otherwise 201/202;
- "cancel": the citizen left; nothing is recorded at Alipay (passed stays F without a reason and
  the flow can be retried until the certify_id expires).
404 unknown ref, 409 expired or already finished, 400 bad outcome. A form post redirects to the
flow's return_url.

Control API (JSON, under /_sim/, unsigned):
- POST /_sim/reset                     forget flows, counts, faults, clock offset, added people
- POST /_sim/people {name, id_number}  register a real person (seeded with DEMO_PEOPLE)
- POST /_sim/apps {app_id, public_key}  register another application (its certify_ids are its own)
- GET  /_sim/calls                     {counts {method: n}, errors {sub_code|code: n}, http_503}
- GET|POST /_sim/faults {down: bool (every gateway call answers HTTP 503), latency_ms: n,
       errors: [codes answered by the next initialize/query calls, in order: "20000", "40006",
       "40004:SYSTEM_ERROR", a sub_code like "CERTIFY_ID_EXPIRED" (→ 40004) or "isv.xxx"],
       bad_response_signature: bool (sign answers with a signature that does not verify)}
- POST /_sim/advance {seconds}          move the expiry clock (core.clock + offset) forward
- POST /_sim/face/perform {ref, outcome}; POST /_sim/face/auto {outcome | null}: the outcome
       assumed for unperformed, unexpired certify_ids when queried (null: unfinished, "F")
- GET  /_sim/face/<ref>                 {ref, performed, passed, fail_reason, age_seconds}
- GET|POST /_sim/merchant {fail_reason: bool}  whether query answers carry fail_reason (the
       per-merchant extension; on after a reset)
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, redirect, request

from core import clock
from integrations.alipay import dev_keys, rsa2
from integrations.alipay.client import CERTIFY, CERTIFY_ID_TTL, INITIALIZE, QUERY
from integrations.realname.people import MATCH, NAME_MISMATCH, PeopleRegister

METHODS = (INITIALIZE, CERTIFY, QUERY)
RESULT_RETENTION = 90 * 86400
TIMESTAMP_WINDOW = 15 * 60
OUTCOMES = ("pass", "liveness_fail", "other_person", "cancel")
FAULT_KEYS = frozenset({"down", "latency_ms", "errors", "bad_response_signature"})
MSGS = {
    "10000": "Success", "20000": "Service Currently Unavailable", "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments", "40002": "Invalid Arguments", "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}  # fmt: skip
SUB_MSGS = {
    "isp.unknow-error": "服务暂不可用（业务系统不可用）",
    "aop.unknow-error": "服务暂不可用（网关自身的未知错误）",
    "isv.insufficient-isv-permissions": "ISV权限不足", "isv.invalid-parameter": "参数无效",
    "isv.missing-signature": "缺少签名参数", "isv.invalid-signature": "无效签名",
    "ILLEGAL_ARGUMENT_FORMAT": "参数异常", "OPEN_CERTIFY_BILL_NOT_EXIST": "无效的certify_id",
    "CERTIFY_ID_EXPIRED": "认证已失效", "SYSTEM_ERROR": "系统繁忙",
}  # fmt: skip
DEFAULT_SUB = {
    "20000": "isp.unknow-error", "20001": "aop.invalid-auth-token", "40001": "isv.missing-signature",
    "40002": "isv.invalid-parameter", "40004": "SYSTEM_ERROR", "40006": "isv.insufficient-isv-permissions",
}  # fmt: skip
_OUTER_ORDER_NO = re.compile(r"[A-Za-z0-9]{1,32}")
_PURGE_EVERY = 1000
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _valid_cert_no(cert_no: Any) -> bool:
    """18 characters, GB 11643 check character."""
    if not isinstance(cert_no, str) or not re.fullmatch(r"[0-9]{17}[0-9X]", cert_no):
        return False
    total = sum(int(d) * w for d, w in zip(cert_no[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == cert_no[17]


class GatewayError(Exception):
    """A refusal in Alipay's envelope; `signed` False for the answers Alipay sends unsigned."""

    def __init__(self, code: str, sub_code: str, sub_msg: str | None = None, *, signed: bool = True) -> None:
        super().__init__(sub_code)
        self.code, self.sub_code, self.signed = code, sub_code, signed
        self.sub_msg = sub_msg or SUB_MSGS.get(sub_code, "模拟故障")


def _illegal(detail: str) -> GatewayError:
    return GatewayError("40004", "ILLEGAL_ARGUMENT_FORMAT", f"参数异常: {detail}")


def injected_error(entry: Any) -> GatewayError:
    """A fault entry ("20000", "40004:SYSTEM_ERROR", "CERTIFY_ID_EXPIRED", "isv.x") as an error."""
    text = str(entry)
    if ":" in text:
        return GatewayError(*text.split(":", 1))
    if text.isascii() and text.isdigit():
        return GatewayError(text, DEFAULT_SUB.get(text, "isp.unknow-error"))
    prefixes = (("isp.", "20000"), ("aop.", "20000"), ("isv.missing", "40001"),
                ("isv.insufficient", "40006"), ("isv.", "40002"))  # fmt: skip
    code = next((c for prefix, c in prefixes if text.startswith(prefix)), "40004")
    return GatewayError(code, text)


@dataclass
class Certification:
    certify_id: str
    app_id: str
    outer_order_no: str
    cert_name: str
    cert_no: str
    return_url: str
    created_at: float
    passed: str | None = None  # "T" / "F" once the citizen finished
    fail_reason: str | None = None
    performed_at: float | None = None

    def gone(self, now: float) -> bool:
        """Expired unperformed after 23 h, or a result older than its 90-day retention."""
        if self.performed_at is None:
            return now >= self.created_at + CERTIFY_ID_TTL
        return now >= self.performed_at + RESULT_RETENTION

    def __repr__(self) -> str:  # the simulator never prints a name or ID number either
        return f"Certification({self.certify_id[:8]}…, passed={self.passed})"


class SimState:
    """Flows, the population register, counts and the conventional fault switches."""

    def __init__(self, app_id: str, app_public_key: str, platform_private_key: str) -> None:
        self.base_apps = {app_id: rsa2.load_public_key(app_public_key)}
        self.platform_key = rsa2.load_private_key(platform_private_key)
        self.lock = threading.Lock()
        self.people = PeopleRegister()
        self.reset()

    def reset(self) -> None:
        """Back to the seeded state."""
        with self.lock:
            self.people.reset()
            self.apps = dict(self.base_apps)
            self.certs: dict[str, Certification] = {}
            self.order_nos: set[tuple[str, str]] = set()
            self.counts: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()
            self.http_503 = 0
            self.offset = 0.0
            self.auto: str | None = None
            self.down = False
            self.latency_ms = 0
            self.fault_errors: list[Any] = []
            self.bad_signature = False
            self.fail_reason_extension = True
            self.created = 0
            # Bumped by reset(): a call that began before a reset (e.g. one held by injected
            # latency) must not leave its flow in the new, empty state.
            self.generation = getattr(self, "generation", 0) + 1

    def now(self) -> float:
        return clock.timestamp() + self.offset

    def perform(self, cert: Certification, outcome: str) -> None:
        """The citizen finishes (or leaves) the face flow; caller holds the lock."""
        if outcome == "cancel":
            return  # Alipay records nothing: the flow stays open until it expires
        verdict = self.people.lookup(cert.cert_name, cert.cert_no)
        identity_fail = "201" if verdict == NAME_MISMATCH else "202"
        if outcome == "liveness_fail":
            cert.passed, cert.fail_reason = "F", "205"
        elif verdict != MATCH:
            cert.passed, cert.fail_reason = "F", identity_fail
        elif outcome == "pass":
            cert.passed = "T"
        else:  # other_person: a live face, not this identity's
            cert.passed, cert.fail_reason = "F", "204"
        cert.performed_at = self.now()


def _params() -> dict[str, str]:
    """Common and business parameters, from the query string and the form body."""
    merged = dict(request.args.items())
    merged.update(request.form.items())
    return merged


def check_common(state: SimState, p: Mapping[str, str]) -> str:
    """The gateway's checks before any business logic, in its order; returns the method."""
    method = p.get("method")
    if not method:
        raise GatewayError("40001", "isv.missing-method", "缺少方法名参数")
    if method not in METHODS:
        raise GatewayError("40002", "isv.invalid-method", "不存在的方法名")
    if not p.get("app_id"):
        raise GatewayError("40001", "isv.missing-app-id", "缺少appId参数", signed=False)
    app_key = state.apps.get(p["app_id"])
    if app_key is None:
        raise GatewayError("40002", "isv.invalid-app-id", "无效的AppID参数", signed=False)
    if p.get("format") and p["format"].upper() != "JSON":
        raise GatewayError("40002", "isv.invalid-format", "无效的数据格式")
    # The gateway decodes the parameters with charset, so it has to be sent (and be utf-8 here).
    if (p.get("charset") or "").lower() != "utf-8":
        raise GatewayError("40002", "isv.invalid-charset", "字符集错误")
    if not p.get("sign_type"):
        raise GatewayError("40001", "isv.missing-signature-type", "缺少签名类型参数")
    if p["sign_type"] != "RSA2":
        raise GatewayError("40002", "isv.invalid-signature-type", "无效的签名类型")
    if not p.get("sign"):
        raise GatewayError("40001", "isv.missing-signature", "缺少签名参数")
    if not p.get("timestamp"):
        raise GatewayError("40001", "isv.missing-timestamp", "缺少时间戳参数")
    try:
        timely = abs(time.time() - rsa2.parse_timestamp(p["timestamp"])) <= TIMESTAMP_WINDOW
    except ValueError:
        timely = False
    if not timely:
        raise GatewayError("40002", "isv.invalid-timestamp", "非法的时间戳参数")
    if not p.get("version"):
        raise GatewayError("40001", "isv.missing-version", "缺少版本参数")
    if p["version"] != "1.0":
        raise GatewayError("40002", "isv.invalid-parameter", "无效的版本号")
    if not rsa2.verify_params(p, app_key):
        raise GatewayError("40002", "isv.invalid-signature", "无效签名")
    return method


def _biz(p: Mapping[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(p.get("biz_content") or "")
    except ValueError:
        raise _illegal("biz_content is not JSON") from None
    if not isinstance(biz, dict):
        raise _illegal("biz_content is not a JSON object")
    return biz


def _object(value: Any, name: str) -> dict[str, Any]:
    """A nested parameter, sent as a JSON object or as a JSON string (older SDK models)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _illegal(f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise _illegal(f"{name} is missing")
    return value


def initialize(state: SimState, app_id: str, biz: dict[str, Any]) -> dict[str, Any]:
    """alipay.user.certify.open.initialize; caller holds the lock."""
    order_no = biz.get("outer_order_no")
    if not isinstance(order_no, str) or not _OUTER_ORDER_NO.fullmatch(order_no):
        raise _illegal("outer_order_no")
    if biz.get("biz_code") != "FACE":
        raise _illegal("biz_code")
    identity = _object(biz.get("identity_param"), "identity_param")
    if identity.get("identity_type") != "CERT_INFO" or identity.get("cert_type") != "IDENTITY_CARD":
        raise _illegal("identity_type/cert_type")
    name = identity.get("cert_name")
    if not isinstance(name, str) or not name.strip():
        raise _illegal("cert_name")
    if not _valid_cert_no(identity.get("cert_no")):
        raise _illegal("cert_no")
    merchant = _object(biz.get("merchant_config"), "merchant_config")
    return_url = merchant.get("return_url")
    if not isinstance(return_url, str) or not return_url:
        raise _illegal("return_url")
    if merchant.get("face_reserve_strategy", "reserve") not in ("reserve", "never"):
        raise _illegal("face_reserve_strategy")
    if (app_id, order_no) in state.order_nos:
        raise _illegal("outer_order_no already used")
    state.order_nos.add((app_id, order_no))
    cert = Certification(
        uuid.uuid4().hex, app_id, order_no, name, identity["cert_no"], return_url, state.now()
    )
    state.certs[cert.certify_id] = cert
    state.created += 1
    if state.created % _PURGE_EVERY == 0:  # the benchmark creates many: forget what Alipay forgot
        now = state.now()
        for gone in [c for c in state.certs.values() if c.gone(now)]:
            del state.certs[gone.certify_id]
            state.order_nos.discard((gone.app_id, gone.outer_order_no))
    return {"certify_id": cert.certify_id}


def _lookup(state: SimState, app_id: str, biz: dict[str, Any]) -> Certification:
    certify_id = biz.get("certify_id")
    if not isinstance(certify_id, str) or not certify_id:
        raise _illegal("certify_id")
    cert = state.certs.get(certify_id)
    if cert is None or cert.app_id != app_id:
        raise GatewayError("40004", "OPEN_CERTIFY_BILL_NOT_EXIST")
    if cert.gone(state.now()):
        raise GatewayError("40004", "CERTIFY_ID_EXPIRED")
    return cert


def query(state: SimState, app_id: str, biz: dict[str, Any]) -> dict[str, Any]:
    """alipay.user.certify.open.query; caller holds the lock."""
    cert = _lookup(state, app_id, biz)
    if cert.passed is None and state.auto:
        state.perform(cert, state.auto)
    out: dict[str, Any] = {"passed": cert.passed or "F"}
    if cert.fail_reason and state.fail_reason_extension:
        out["fail_reason"] = cert.fail_reason
    out["material_info"] = "{}"  # no image material, ever
    return out


def _signed_body(state: SimState, member: str, data: dict[str, Any], signed: bool, bad: bool) -> Response:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    body = f'{{"{member}":{text}'
    if signed:
        sig = rsa2.sign(("tampered" if bad else "") + text, state.platform_key)
        body += f',"sign":"{sig}"'
    return Response(body + "}", 200, mimetype="application/json")


def _page(title: str, inner: str) -> Response:
    title = html.escape(title)
    doc = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>'
           f"</head><body><h1>{title}</h1>{inner}</body></html>")  # fmt: skip
    return Response(doc, 200, mimetype="text/html")


def _certify_page(state: SimState, cert: Certification) -> Response:
    buttons = "".join(
        f'<form method="post" action="/_sim/face/perform"><input type="hidden" name="ref" '
        f'value="{html.escape(cert.certify_id)}"><input type="hidden" name="outcome" value="{o}">'
        f'<button type="submit">{o}</button></form>'
        for o in OUTCOMES
    )
    return _page("支付宝身份验证（模拟器）", f"<p>certify_id {html.escape(cert.certify_id)}</p>{buttons}")


def gateway(state: SimState) -> Response:
    """Every call to /gateway.do."""
    with state.lock:
        down, latency, bad, generation = state.down, state.latency_ms, state.bad_signature, state.generation
    if latency:
        time.sleep(float(latency) / 1000)
    if down:
        with state.lock:
            state.http_503 += 1
        return Response("<html><body><h1>503 Service Unavailable</h1></body></html>", 503,
                        mimetype="text/html")  # fmt: skip
    p = _params()
    method = p.get("method") or ""
    member = rsa2.response_member(method) if method in METHODS else "error_response"
    try:
        check_common(state, p)
        with state.lock:
            if state.generation != generation:
                raise GatewayError("20000", "isp.unknow-error", "模拟器在请求期间被重置")
            state.counts[method] += 1
            if method == CERTIFY:
                return _certify_page(state, _lookup(state, p["app_id"], _biz(p)))
            if state.fault_errors:
                raise injected_error(state.fault_errors.pop(0))
            biz = _biz(p)
            handler = initialize if method == INITIALIZE else query
            data = handler(state, p["app_id"], biz)
        return _signed_body(state, member, {"code": "10000", "msg": "Success", **data}, True, bad)
    except GatewayError as exc:
        with state.lock:
            state.errors[exc.sub_code or exc.code] += 1
        if method == CERTIFY:
            return _page("支付宝 - 调试错误", f"<p>错误代码 {html.escape(exc.sub_code)}</p>")
        data = {"code": exc.code, "msg": MSGS.get(exc.code, ""), "sub_code": exc.sub_code,
                "sub_msg": exc.sub_msg}  # fmt: skip
        return _signed_body(state, member, data, exc.signed, bad)


def _register_control(app: Flask, state: SimState) -> None:
    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"ok": True})

    @app.post("/_sim/people")
    def people() -> Response | tuple:
        body = request.get_json(silent=True) or {}
        if not body.get("name") or not body.get("id_number"):
            return jsonify({"error": "name and id_number are required"}), 400
        state.people.add(body["name"], body["id_number"])
        return jsonify({"ok": True})

    @app.post("/_sim/apps")
    def apps() -> Response | tuple:
        body = request.get_json(silent=True) or {}
        try:
            key = rsa2.load_public_key(str(body.get("public_key") or ""))
        except rsa2.RsaKeyError:
            return jsonify({"error": "public_key must be an RSA-2048 PEM public key"}), 400
        if not body.get("app_id"):
            return jsonify({"error": "app_id is required"}), 400
        with state.lock:
            state.apps[str(body["app_id"])] = key
        return jsonify({"ok": True})

    @app.get("/_sim/calls")
    def calls() -> Response:
        with state.lock:
            counts, errors = dict(state.counts), dict(state.errors)
            return jsonify({"counts": counts, "errors": errors, "http_503": state.http_503})

    @app.route("/_sim/faults", methods=["GET", "POST"])
    def faults() -> Response | tuple:
        with state.lock:
            if request.method == "POST":
                body = request.get_json(silent=True)
                if not isinstance(body, dict) or set(body) - FAULT_KEYS:
                    return jsonify({"error": f"body keys must come from {sorted(FAULT_KEYS)}"}), 400
                state.down = bool(body.get("down", state.down))
                state.latency_ms = int(body.get("latency_ms", state.latency_ms))
                state.fault_errors = list(body.get("errors", state.fault_errors))
                state.bad_signature = bool(body.get("bad_response_signature", state.bad_signature))
            return jsonify({"down": state.down, "latency_ms": state.latency_ms, "errors": state.fault_errors,
                            "bad_response_signature": state.bad_signature})  # fmt: skip

    @app.route("/_sim/merchant", methods=["GET", "POST"])
    def merchant() -> Response | tuple:
        with state.lock:
            if request.method == "POST":
                body = request.get_json(silent=True)
                if not isinstance(body, dict) or set(body) - {"fail_reason"}:
                    return jsonify({"error": "body must be {fail_reason: bool}"}), 400
                if not isinstance(body.get("fail_reason", True), bool):
                    return jsonify({"error": "fail_reason must be true or false"}), 400
                state.fail_reason_extension = body.get("fail_reason", state.fail_reason_extension)
            return jsonify({"fail_reason": state.fail_reason_extension})

    @app.post("/_sim/advance")
    def advance() -> Response:
        seconds = float((request.get_json(silent=True) or {}).get("seconds", 0))
        with state.lock:
            state.offset += seconds
            return jsonify({"offset": state.offset})

    @app.post("/_sim/face/perform")
    def perform() -> Any:
        form = not request.is_json  # the certify page's buttons post a form
        body = request.form if form else (request.get_json(silent=True) or {})
        ref, outcome = body.get("ref"), body.get("outcome")
        if outcome not in OUTCOMES:
            return jsonify({"error": f"outcome must be one of {OUTCOMES}"}), 400
        with state.lock:
            cert = state.certs.get(ref or "")
            if cert is None:
                return jsonify({"error": "unknown certify_id"}), 404
            if cert.gone(state.now()) or cert.passed is not None:
                return jsonify({"error": "certify_id expired or already finished"}), 409
            state.perform(cert, outcome)
            result = {"passed": cert.passed or "F", "fail_reason": cert.fail_reason}
            return_url = cert.return_url
        return redirect(return_url, 302) if form else jsonify(result)

    @app.post("/_sim/face/auto")
    def auto() -> Response | tuple:
        outcome = (request.get_json(silent=True) or {}).get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            return jsonify({"error": f"outcome must be null or one of {OUTCOMES}"}), 400
        with state.lock:
            state.auto = outcome
        return jsonify({"outcome": outcome})

    @app.get("/_sim/face/<ref>")
    def flow(ref: str) -> Response | tuple:
        with state.lock:
            cert = state.certs.get(ref)
            if cert is None:
                return jsonify({"error": "unknown certify_id"}), 404
            age = state.now() - cert.created_at
            return jsonify({"ref": ref, "performed": cert.passed is not None, "passed": cert.passed,
                            "fail_reason": cert.fail_reason, "age_seconds": age})  # fmt: skip


def create_simulator(config: Mapping[str, Any]) -> Flask:
    """The simulator app for the application ALIPAY_APP_ID named in `config`."""
    state = SimState(
        app_id=str(config["ALIPAY_APP_ID"]),
        app_public_key=config.get("ALIPAY_SIM_APP_PUBLIC_KEY") or dev_keys.APP_PUBLIC_KEY,
        platform_private_key=dev_keys.PLATFORM_PRIVATE_KEY,
    )
    app = Flask("alipay_simulator")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["alipay_sim"] = state
    app.add_url_rule("/gateway.do", "gateway", lambda: gateway(state), methods=["GET", "POST"])
    _register_control(app, state)
    return app
