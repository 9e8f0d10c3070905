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

This module is the HTTP entry (request envelope, TC3 check, app factory); SendSms itself is in
sim_send, the memory in sim_state, delivery reports in sim_receipts, the /_sim/ routes in
sim_control.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from integrations.sms.sim_control import register_control
from integrations.sms.sim_receipts import report
from integrations.sms.sim_send import ApiError, send_sms
from integrations.sms.sim_state import (
    CLOSED_CONTENT,
    NOTICE_CONTENT,
    OTP_CONTENT,
    RECEIPTS_OFF,
    SimState,
    Template,
)
from integrations.tencentcloud import tc3

VERSION = "2021-01-11"
ACTIONS = ("SendSms",)
REGIONS = ("ap-guangzhou", "ap-beijing", "ap-nanjing")


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
            statuses = send_sms(state, params, request_id)
            state.calls["ok"] += 1
            receipts = dict(state.receipts)
        report(state, statuses, receipts)
        return jsonify({"Response": {"SendStatusSet": statuses, "RequestId": request_id}})
    except (tc3.Tc3Error, ApiError) as exc:
        with state.lock:
            state.errors[exc.code] += 1
        return jsonify(tc3.error_envelope(exc.code, exc.message, request_id))


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
    register_control(app, state)
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
