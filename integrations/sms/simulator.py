"""Tencent Cloud SMS simulator: the SendSms API (version 2021-01-11) as a local HTTP server.

It checks what the real service checks and answers in the real envelopes, so the production
client (the official SDK) runs against it unchanged: `SMS_ENDPOINT=127.0.0.1:9102`,
`SMS_SCHEME=http`. Tests serve it on a random port (tests/conftest.py `sms_sim`); `make run`
serves it with `python -m integrations.sms.simulator` on SMS_ENDPOINT.

API (POST or GET on "/"):
- TC3-HMAC-SHA256 verified by integrations.tencentcloud.tc3 (Host with its port, content-type,
  credential scope date/sms/tc3_request): AuthFailure.SignatureFailure, .SecretIdNotFound,
  .SignatureExpire (timestamp more than 5 minutes from the wall clock), .InvalidAuthorization;
  MissingParameter, InvalidAction, NoSuchVersion, UnsupportedRegion, UnknownParameter.
- SendSms checks: InvalidParameterValue.SdkAppIdNotExist, FailedOperation.Signature-
  IncorrectOrUnapproved, FailedOperation.TemplateIncorrectOrUnapproved,
  InvalidParameterValue.TemplateParameterFormatError (parameter count; an OTP template's code
  must be 0-6 digits), LimitExceeded.PhoneNumberCountLimit (more than 200 numbers).
- Per number, inside a successful response (SendStatusSet[].Code):
  InvalidParameterValue.IncorrectPhoneNumber, LimitExceeded.PhoneNumberThirtySecondLimit
  (1 per 30 s), .PhoneNumberOneHourLimit (5 per hour), .PhoneNumberDailyLimit (10 per
  Beijing-time day). Success: {SerialNo, PhoneNumber "+86…", Fee, SessionContext, Code "Ok",
  Message "send success", IsoCode "CN"}; Fee is 1 per 70 characters (67 when split).
Registered from the config mapping: TENCENT_SECRET_ID/TENCENT_SECRET_KEY, SMS_SDK_APP_ID,
SMS_SIGN_NAME, the OTP template SMS_TEMPLATE_OTP with 2 parameters (code, minutes) and the
case-progress template SMS_TEMPLATE_NOTICE with 3 (service, case number, status), and the
account-closed template SMS_TEMPLATE_ACCOUNT_CLOSED with 1 (the day).

Control API (JSON, under /_sim/, unsigned):
- GET  /_sim/messages[?phone=13800138000]  delivered messages, oldest first (phone with or
       without +86); each has phone, template_id, params, content, sign_name, serial_no,
       session_context, request_id, sent_at.
- GET  /_sim/calls        counts: total, by_action, ok, errors {code: n}, statuses {code: n}, http_5xx
- GET|POST /_sim/faults   {http_5xx_rate: 0..1, http_status: 5xx, internal_error_rate: 0..1,
       latency_ms: n, errors: ["RequestLimitExceeded", ...] (answered by the next calls, in order)}
- POST /_sim/advance      {seconds: n}: move the per-number frequency windows forward (the
       signature check keeps the wall clock, which is what the SDK signs with); {to: epoch
       seconds}: set the windows' clock to that moment (a test whose daily limit must not cross
       Beijing midnight, whatever the wall clock says)
- PUT  /_sim/templates/<id> {content: "…{1}…", approved: bool, kind: "otp"|"notice"}
- GET|POST /_sim/receipts delivery reports (状态回执) POSTed to SMS_SIM_RECEIPT_URL in Tencent's
       callback format ([{user_receive_time, nationcode, mobile, report_status SUCCESS|FAIL, errmsg,
       description, sid}]): {mode: off|after|before, status, copies, delay_ms}; "before" posts
       the report before SendSms answers (out of order); {serial_no, status} posts one now
- POST /_sim/reset        forget messages, counts, faults, windows and added templates
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import Flask, Response, jsonify, request

from integrations.tencentcloud import tc3

VERSION = "2021-01-11"
ACTIONS = ("SendSms",)
REGIONS = ("ap-guangzhou", "ap-beijing", "ap-nanjing")
OTP_CONTENT = "您的验证码为{1}，{2}分钟内有效，请勿泄露于他人。如非本人操作，请忽略本短信。"
NOTICE_CONTENT = "您办理的{1}（受理编号{2}）{3}，详情请在一网通办查看。"
CLOSED_CONTENT = "您的一网通办账号已于{1}注销。如非本人操作，请拨打12345政务服务便民热线。"
SEND_SMS_PARAMS = {
    "PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName", "TemplateParamSet",
    "ExtendCode", "SessionContext", "SenderId",
}  # fmt: skip
MAX_NUMBERS = 200
FREQUENCY_LIMITS = (  # Tencent's default per-number policy
    ("LimitExceeded.PhoneNumberThirtySecondLimit", 30, 1),
    ("LimitExceeded.PhoneNumberOneHourLimit", 3600, 5),
)
DAILY_LIMIT = ("LimitExceeded.PhoneNumberDailyLimit", 10)
_BEIJING = timezone(timedelta(hours=8))
_MAINLAND = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
# mode: off | after (a report shortly after the answer) | before (the report arrives before
# SendSms answers: out of order); status SUCCESS or FAIL; copies: how often each report is sent.
RECEIPTS_OFF = {"mode": "off", "status": "SUCCESS", "copies": 1, "delay_ms": 50}
_FAULT_KEYS = {"http_5xx_rate", "http_status", "internal_error_rate", "latency_ms", "errors"}


@dataclass
class Template:
    id: str
    content: str
    approved: bool = True
    kind: str = "notice"  # "otp": Tencent only accepts 0-6 digits for the code variable

    @property
    def param_count(self) -> int:
        return len(set(re.findall(r"\{(\d+)\}", self.content)))


def _default_faults() -> dict[str, Any]:
    return {
        "http_5xx_rate": 0.0,
        "http_status": 503,
        "internal_error_rate": 0.0,
        "latency_ms": 0,
        "errors": [],
    }


@dataclass
class SimState:
    secrets: dict[str, str]
    app_ids: set[str]
    signs: set[str]
    base_templates: dict[str, Template]
    templates: dict[str, Template] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    calls: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    faults: dict[str, Any] = field(default_factory=_default_faults)
    offset: float = 0.0
    # Bumped by reset(): a request that began before a reset (e.g. one held by injected
    # latency) must not leave its message in the new, empty state.
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)
    # Delivery reports (状态回执): where to POST them and when.
    receipt_url: str = ""
    receipts: dict[str, Any] = field(default_factory=lambda: dict(RECEIPTS_OFF))
    base_receipts: dict[str, Any] = field(default_factory=lambda: dict(RECEIPTS_OFF))

    def reset(self) -> None:
        with self.lock:
            self.templates = {k: Template(**asdict(v)) for k, v in self.base_templates.items()}
            self.messages.clear()
            self.history.clear()
            self.calls.clear()
            self.errors.clear()
            self.statuses.clear()
            self.faults = _default_faults()
            self.offset = 0.0
            self.receipts = dict(self.base_receipts)
            self.generation += 1

    def sim_now(self) -> float:
        return time.time() + self.offset


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


def _unflatten(args: Mapping[str, str]) -> dict[str, Any]:
    """GET parameters "PhoneNumberSet.0=…" → {"PhoneNumberSet": [...]} (the SDK's GET encoding)."""
    out: dict[str, Any] = {}
    indexed: dict[str, dict[int, str]] = defaultdict(dict)
    for key, value in args.items():
        name, _, idx = key.partition(".")
        if idx.isascii() and idx.isdigit():
            indexed[name][int(idx)] = value
        else:
            out[key] = value
    for name, items in indexed.items():
        out[name] = [items[i] for i in sorted(items)]
    return out


def _params() -> dict[str, Any]:
    if request.method == "GET":
        return _unflatten(request.args)
    if request.mimetype != "application/json":
        raise ApiError("InvalidParameter", "TC3-HMAC-SHA256 POST requests must be application/json.")
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError as exc:
        raise ApiError("FailedOperation.JsonParseFail", "Failed to parse the request body as JSON.") from exc
    if not isinstance(data, dict):
        raise ApiError("FailedOperation.JsonParseFail", "The request body must be a JSON object.")
    return data


def _check_send_sms(state: SimState, p: dict[str, Any]) -> Template:
    unknown = sorted(set(p) - SEND_SMS_PARAMS)
    if unknown:
        raise ApiError("UnknownParameter", f"The parameter `{unknown[0]}` is not recognized.")
    for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
        if p.get(name) in (None, "", []):
            raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
    for name in ("PhoneNumberSet", "TemplateParamSet"):
        value = p.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be an array of strings.")
    for name in ("SmsSdkAppId", "TemplateId", "SignName", "SessionContext", "ExtendCode", "SenderId"):
        if name in p and not isinstance(p[name], str):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be a string.")
    if len(p["PhoneNumberSet"]) > MAX_NUMBERS:
        raise ApiError("LimitExceeded.PhoneNumberCountLimit", "At most 200 phone numbers per request.")
    if p["SmsSdkAppId"] not in state.app_ids:
        raise ApiError("InvalidParameterValue.SdkAppIdNotExist", "The SmsSdkAppId does not exist.")
    if p.get("SignName") not in state.signs:
        raise ApiError(
            "FailedOperation.SignatureIncorrectOrUnapproved",
            "The signature is not approved or is incorrectly formatted.",
        )
    template = state.templates.get(p["TemplateId"])
    if template is None or not template.approved:
        raise ApiError(
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "The template is not approved or the template content does not match.",
        )
    values = p.get("TemplateParamSet", [])
    if len(values) != template.param_count:
        raise ApiError(
            "InvalidParameterValue.TemplateParameterFormatError",
            f"The template requires {template.param_count} parameters, {len(values)} given.",
        )
    if template.kind == "otp" and not re.fullmatch(r"\d{0,6}", values[0]):
        raise ApiError(
            "InvalidParameterValue.TemplateParameterFormatError",
            "A verification-code template variable only accepts 0-6 digits.",
        )
    return template


def _frequency_error(state: SimState, number: str, now: float) -> str | None:
    sent = state.history[number]
    for code, window, limit in FREQUENCY_LIMITS:
        if sum(1 for t in sent if now - t < window) >= limit:
            return code
    today = datetime.fromtimestamp(now, tz=_BEIJING).date()
    code, limit = DAILY_LIMIT
    if sum(1 for t in sent if datetime.fromtimestamp(t, tz=_BEIJING).date() == today) >= limit:
        return code
    return None


def _send_sms(state: SimState, p: dict[str, Any], request_id: str) -> list[dict[str, Any]]:
    template = _check_send_sms(state, p)
    values = p.get("TemplateParamSet", [])
    body = template.content
    for i, value in enumerate(values, start=1):
        body = body.replace(f"{{{i}}}", value)
    content = f"【{p['SignName']}】{body}"
    fee = 1 if len(content) <= 70 else math.ceil(len(content) / 67)
    now = state.sim_now()
    results = []
    for raw in p["PhoneNumberSet"]:
        match = _MAINLAND.match(raw.replace(" ", ""))
        number = f"+86{match.group(1)}" if match else raw
        context = p.get("SessionContext", "")
        status = {"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": context,
                  "Code": "Ok", "Message": "send success", "IsoCode": "CN" if match else ""}  # fmt: skip
        error = (
            "InvalidParameterValue.IncorrectPhoneNumber"
            if match is None
            else _frequency_error(state, number, now)
        )
        if error:
            status.update(Code=error, Message="The request was rejected for this number.")
        else:
            serial = f"{state.rng.randint(2000, 3999)}:{state.rng.getrandbits(64):020d}"
            status.update(SerialNo=serial, Fee=fee)
            state.history[number].append(now)
            state.messages.append({
                "phone": number, "template_id": template.id, "params": list(values), "content": content,
                "sign_name": p["SignName"], "serial_no": serial, "session_context": context,
                "request_id": request_id, "app_id": p["SmsSdkAppId"],
                "sent_at": datetime.fromtimestamp(now, tz=UTC).isoformat(),
            })  # fmt: skip
        state.statuses[status["Code"]] += 1
        results.append(status)
    return results


def _api(state: SimState) -> Response | tuple:
    request_id = tc3.new_request_id()
    with state.lock:
        state.calls["total"] += 1
        generation = state.generation
        faults = dict(state.faults)
        injected = state.faults["errors"].pop(0) if state.faults["errors"] else None
        gateway_down = state.rng.random() < float(faults["http_5xx_rate"])
        internal = state.rng.random() < float(faults["internal_error_rate"])
    if faults["latency_ms"]:
        time.sleep(float(faults["latency_ms"]) / 1000)
    if gateway_down:
        with state.lock:
            state.calls["http_5xx"] += 1
        status = int(faults["http_status"])
        return Response(f"<html><body><h1>{status} Service Unavailable</h1></body></html>", status,
                        mimetype="text/html")  # fmt: skip
    try:
        verified = tc3.verify_request(
            method=request.method,
            query=request.query_string.decode(),
            headers=request.headers,
            body=request.get_data(),
            service="sms",
            secret_keys=state.secrets,
            now=time.time(),
        )
        with state.lock:
            state.calls[f"action:{verified.action}"] += 1
        if verified.action not in ACTIONS:
            raise ApiError("InvalidAction", f"The action `{verified.action}` is not found for service `sms`.")
        if verified.version != VERSION:
            raise ApiError(
                "NoSuchVersion", f"The version `{verified.version}` of action SendSms is not found."
            )
        if not verified.region:
            raise ApiError("MissingParameter", "The request is missing a required parameter `Region`.")
        if verified.region not in REGIONS:
            raise ApiError("UnsupportedRegion", f"The region `{verified.region}` is not supported by sms.")
        if injected:
            raise ApiError(injected, "Injected fault.")
        if internal:
            raise ApiError("InternalError", "An internal error has occurred. Retry your request later.")
        params = _params()
        with state.lock:
            if state.generation != generation:
                raise ApiError("InternalError", "The simulator was reset during this request.")
            statuses = _send_sms(state, params, request_id)
            state.calls["ok"] += 1
            receipts = dict(state.receipts)
        _report(state, statuses, receipts)
        return jsonify({"Response": {"SendStatusSet": statuses, "RequestId": request_id}})
    except (tc3.Tc3Error, ApiError) as exc:
        with state.lock:
            state.errors[exc.code] += 1
        return jsonify(tc3.error_envelope(exc.code, exc.message, request_id))


def receipt_body(status: dict[str, Any], report: str) -> list[dict[str, Any]]:
    """Tencent's delivery-report callback body for one sent message."""
    ok = report == "SUCCESS"
    return [{
        "user_receive_time": datetime.now(tz=_BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "nationcode": "86", "mobile": status["PhoneNumber"].removeprefix("+86"),
        "report_status": report, "errmsg": "DELIVRD" if ok else "MK:0005",
        "description": "用户短信送达成功" if ok else "用户手机关机或停机", "sid": status["SerialNo"],
        "ext": {"session_context": status.get("SessionContext", "")},
    }]  # fmt: skip


def _post_receipts(url: str, bodies: list[list[dict[str, Any]]]) -> None:
    import httpx

    for body in bodies:
        try:
            httpx.post(url, json=body, timeout=5)
        except httpx.HTTPError:
            pass  # the real platform retries a few times, then gives up; so does a test


def _report(state: SimState, statuses: list[dict[str, Any]], receipts: dict[str, Any]) -> None:
    if receipts["mode"] == "off" or not state.receipt_url:
        return
    bodies = [receipt_body(s, receipts["status"]) for s in statuses if s["Code"] == "Ok"]
    bodies = [b for b in bodies for _ in range(int(receipts["copies"]))]
    if receipts["mode"] == "before":
        _post_receipts(state.receipt_url, bodies)
        return

    def later() -> None:
        time.sleep(float(receipts["delay_ms"]) / 1000)
        _post_receipts(state.receipt_url, bodies)

    threading.Thread(target=later, daemon=True).start()


def _register_control(app: Flask, state: SimState) -> None:
    @app.route("/_sim/receipts", methods=["GET", "POST"])
    def receipts() -> Response | tuple:
        """GET the report settings; POST {mode, status, copies, delay_ms} to change them, or
        {serial_no, status} to send one report now (to the configured callback URL)."""
        body = request.get_json(silent=True) or {}
        if request.method == "POST" and body.get("serial_no"):
            with state.lock:
                sent = next((m for m in state.messages if m["serial_no"] == body["serial_no"]), None)
            if sent is None:
                return jsonify({"error": "unknown serial_no"}), 404
            status = {"PhoneNumber": sent["phone"], "SerialNo": sent["serial_no"],
                      "SessionContext": sent["session_context"]}  # fmt: skip
            _post_receipts(state.receipt_url, [receipt_body(status, str(body.get("status") or "SUCCESS"))])
            return jsonify({"sent": True})
        if request.method == "POST":
            mode, status = body.get("mode", "off"), body.get("status", "SUCCESS")
            if mode not in ("off", "after", "before") or status not in ("SUCCESS", "FAIL"):
                return jsonify({"error": "mode off|after|before, status SUCCESS|FAIL"}), 400
            with state.lock:
                state.receipts = RECEIPTS_OFF | {k: body[k] for k in RECEIPTS_OFF if k in body}
        with state.lock:
            return jsonify(state.receipts | {"url": state.receipt_url})

    @app.get("/_sim/messages")
    def messages() -> Response:
        phone = (request.args.get("phone") or "").replace(" ", "")
        match = _MAINLAND.match(phone)
        wanted = f"+86{match.group(1)}" if match else phone
        with state.lock:
            rows = [m for m in state.messages if not phone or m["phone"] == wanted]
        return jsonify({"messages": rows})

    @app.get("/_sim/calls")
    def calls() -> Response:
        with state.lock:
            by_action = {k.split(":", 1)[1]: v for k, v in state.calls.items() if k.startswith("action:")}
            return jsonify({
                "total": state.calls["total"], "ok": state.calls["ok"], "http_5xx": state.calls["http_5xx"],
                "by_action": by_action, "errors": dict(state.errors), "statuses": dict(state.statuses),
            })  # fmt: skip

    @app.route("/_sim/faults", methods=["GET", "POST"])
    def faults() -> Response | tuple:
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or set(body) - _FAULT_KEYS:
                return jsonify({"error": f"body must be an object with keys from {sorted(_FAULT_KEYS)}"}), 400
            with state.lock:
                state.faults.update(body)
                state.faults["errors"] = list(state.faults["errors"])
        with state.lock:
            return jsonify(state.faults)

    @app.post("/_sim/advance")
    def advance() -> Response:
        body = request.get_json(silent=True) or {}
        try:
            seconds = float(body.get("seconds", 0))
            to = None if body.get("to") is None else float(body["to"])
        except (TypeError, ValueError):
            return jsonify({"error": "seconds and to must be numbers"}), 400
        with state.lock:
            state.offset = state.offset + seconds if to is None else to - time.time()
            return jsonify({"offset": state.offset})

    @app.put("/_sim/templates/<template_id>")
    def put_template(template_id: str) -> Response | tuple:
        body = request.get_json(silent=True) or {}
        with state.lock:
            current = state.templates.get(template_id)
            content = body.get("content") or (current.content if current else None)
            if not content:
                return jsonify({"error": "content is required for a new template"}), 400
            state.templates[template_id] = Template(
                id=template_id,
                content=content,
                approved=bool(body.get("approved", True)),
                kind=body.get("kind") or (current.kind if current else "notice"),
            )
            return jsonify(asdict(state.templates[template_id]))

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"ok": True})


def create_simulator(config: Mapping[str, Any]) -> Flask:
    """The simulator app, with the account, app, sign and OTP template named in `config`."""
    otp = str(config["SMS_TEMPLATE_OTP"])
    state = SimState(
        secrets={config["TENCENT_SECRET_ID"]: config["TENCENT_SECRET_KEY"]},
        app_ids={str(config["SMS_SDK_APP_ID"])},
        signs={config["SMS_SIGN_NAME"]},
        base_templates={otp: Template(id=otp, content=OTP_CONTENT, kind="otp")},
    )
    state.receipt_url = str(config.get("SMS_SIM_RECEIPT_URL") or "")
    if config.get("SMS_SIM_RECEIPTS"):
        state.receipts = RECEIPTS_OFF | {"mode": str(config["SMS_SIM_RECEIPTS"])}
        state.base_receipts = dict(state.receipts)
    notice = str(config.get("SMS_TEMPLATE_NOTICE") or "")
    if notice:
        state.base_templates[notice] = Template(id=notice, content=NOTICE_CONTENT)
    if closed := str(config.get("SMS_TEMPLATE_ACCOUNT_CLOSED") or ""):
        state.base_templates[closed] = Template(id=closed, content=CLOSED_CONTENT)
    state.reset()
    app = Flask("sms_simulator")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["sms_sim"] = state
    app.add_url_rule("/", "api", lambda: _api(state), methods=["GET", "POST"])
    _register_control(app, state)
    return app


def main() -> None:
    """Serve on SMS_ENDPOINT (default 127.0.0.1:9102) with the current configuration."""
    from config import load_config
    from integrations.simulator_server import serve_forever

    cfg = vars(load_config())
    host, _, port = cfg["SMS_ENDPOINT"].rpartition(":")
    serve_forever(create_simulator(cfg), host or "127.0.0.1", int(port))


if __name__ == "__main__":
    main()
