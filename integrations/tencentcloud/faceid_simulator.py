"""Tencent Cloud FaceID (慧眼) simulator: DetectAuth and GetDetectInfoEnhanced (2018-03-01) over HTTP.

The production client (the official SDK) runs against it unchanged: `FACEID_ENDPOINT=127.0.0.1:9103`,
`FACEID_SCHEME=http`. Tests serve it on a random port (tests/integrations/tencentcloud/conftest.py);
`python -m cli.simulators faceid --port 9103` (once registered there) serves it for `make run`.

API (POST on "/", JSON, answers always HTTP 200 with {"Response": {...}} like the real gateway):
- TC3-HMAC-SHA256 verified by integrations.tencentcloud.tc3 with service "faceid" against the
  wall clock (what the SDK signs with): AuthFailure.SignatureFailure, .SecretIdNotFound,
  .SignatureExpire, .InvalidAuthorization; MissingParameter, InvalidAction, NoSuchVersion
  (only 2018-03-01), UnsupportedRegion (Region is optional; if sent: ap-beijing, ap-guangzhou,
  ap-shanghai, ap-chengdu), UnknownParameter, FailedOperation.JsonParseFail.
  Errors use the real envelope {"Response": {"Error": {"Code", "Message"}, "RequestId"}}.
- DetectAuth {RuleId, IdCard, Name, RedirectUrl?, Extra?} → {Url, BizToken, RequestId}.
  RuleId must be FACEID_RULE_ID (else InvalidParameterValue.RuleIdNotExist); IdCard and Name are
  required by the simulated rule (MissingParameter); IdCard must be 18 characters with a valid
  GB 11643 check character and an uppercase X (FailedOperation.IdFormatError); Name 1-32
  characters (FailedOperation.NameFormatError); RedirectUrl and Extra at most 1024 characters.
  DetectAuth does not consult the population register: the identity is checked in the flow.
- GetDetectInfoEnhanced {BizToken, RuleId, InfoType?, ...} → {Text, RequestId}. Unknown token →
  InvalidParameterValue.BizTokenIllegal (also when RuleId is not the token's rule); more than
  3 days after DetectAuth → InvalidParameterValue.BizTokenExpired. Only the text result exists
  here: BestFrame, VideoData and IdCardData are never returned, whatever InfoType asks; every
  query whose InfoType is not "1" is counted in /_sim/calls "image_requests" so tests can prove
  the client never asks for biometric data.
  Text: {ErrCode, ErrMsg, IdCard, Name, LiveStatus, LiveMsg, Comparestatus, Comparemsg, Sim,
  Extra, LivenessDetail[...], ...}; ErrCode null while the citizen has not finished.
  The flow lasts 7,200 s: performing it, or querying an unperformed token, later gives ErrCode 15.

Outcomes of POST /_sim/face/perform {ref: BizToken, outcome} (Tencent's 返回码):
- "pass": registered name + ID → ErrCode 0, Sim 80-99; ID known with another name → 2006
  (姓名和身份证号不匹配); unknown ID → 2005 (未查询到身份信息);
- "liveness_fail" → 1002 (疑似非真人录制), LiveStatus 1002;
- "other_person": registered identity → 2016 (相似度未达到通过阈值), Sim 20-60; otherwise 2005/2006;
- "cancel" → 17 (本次流程未完成).
Performing a token twice → 409.

Control API (JSON, under /_sim/, unsigned):
- POST /_sim/reset                     forget flows, counts, faults, clock offset, added people
- POST /_sim/people {name, id_number}  register a real person (seeded with DEMO_PEOPLE)
- GET  /_sim/calls                     {total, ok, by_action, errors {code: n}, http_5xx, image_requests}
- GET|POST /_sim/faults {down: bool (every API call answers HTTP 503), latency_ms: n,
       errors: [codes answered by the next API calls, in order], bad_response_signature: bool
       (accepted for uniformity; Tencent Cloud API 3.0 does not sign responses, so it does
       nothing), malformed_response: bool (answer 200 with a body that is not JSON)}
- POST /_sim/advance {seconds}          move the simulator's expiry clock forward
- POST /_sim/face/perform {ref, outcome} the citizen finishes the flow in the FaceID SDK
- POST /_sim/face/auto {outcome | null}  outcome assumed for unperformed tokens when queried
- GET  /_sim/face/<ref>                 {ref, performed, err_code, age_seconds} (no personal data)
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from core import clock
from integrations.realname.people import MATCH, NAME_MISMATCH, PeopleRegister
from integrations.tencentcloud import tc3

VERSION = "2018-03-01"
ACTIONS = ("DetectAuth", "GetDetectInfoEnhanced")
REGIONS = ("ap-beijing", "ap-guangzhou", "ap-shanghai", "ap-chengdu")
FLOW_TTL = 7200  # BizToken validity for the flow
RESULT_TTL = 3 * 24 * 3600  # results can be pulled for 3 days
OUTCOMES = ("pass", "liveness_fail", "other_person", "cancel")
DETECT_AUTH_PARAMS = {
    "RuleId", "TerminalType", "IdCard", "Name", "RedirectUrl", "Extra", "ImageBase64", "Encryption",
    "IntentionVerifyText", "IntentionQuestions", "IntentionActions", "Config",
}  # fmt: skip
GET_INFO_PARAMS = {
    "BizToken", "RuleId", "InfoType", "BestFramesCount", "IsCutIdCardImage", "IsNeedIdCardAvatar",
    "IsEncrypt", "Encryption", "IsEncryptResponse", "IsReturnAllVideo",
}  # fmt: skip
_FAULT_KEYS = {"down", "latency_ms", "errors", "bad_response_signature", "malformed_response"}
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_MESSAGES = {
    0: "成功", 15: "Token 过期,请重试", 17: "本次流程未完成", 1002: "疑似非真人录制",
    2005: "未查询到身份信息,请通过其他渠道验证", 2006: "姓名和身份证号不匹配,请核实身份后重试",
    2016: "无法判断为同一人,请确认身份后重试(相似度未达到通过阈值)",
}  # fmt: skip


def _default_faults() -> dict[str, Any]:
    return {"down": False, "latency_ms": 0, "errors": [], "bad_response_signature": False,
            "malformed_response": False}  # fmt: skip


def valid_id_number(value: str) -> bool:
    """18 characters, 17 ASCII digits and the GB 11643 check character (uppercase X only, as
    FaceID); full-width or other Unicode digits (１, ³, ٣) are refused."""
    if len(value) != 18 or not (value[:17].isascii() and value[:17].isdigit()):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == value[17]


@dataclass
class Flow:
    token: str
    rule_id: str
    name: str
    id_number: str
    extra: str | None
    created: float
    text: dict[str, Any] | None = None  # the final Text once performed


@dataclass
class SimState:
    secrets: dict[str, str]
    rule_ids: set[str]
    people: PeopleRegister = field(default_factory=PeopleRegister)
    flows: dict[str, Flow] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    faults: dict[str, Any] = field(default_factory=_default_faults)
    auto: str | None = None
    offset: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)

    def reset(self) -> None:
        with self.lock:
            self.people.reset()
            self.flows.clear()
            self.calls.clear()
            self.errors.clear()
            self.faults = _default_faults()
            self.auto = None
            self.offset = 0.0

    def now(self) -> float:
        """Expiry time: core.clock (tests freeze it) plus the /_sim/advance offset."""
        return clock.timestamp() + self.offset


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


def _text(state: SimState, flow: Flow, err: int | None, live: int | None = None,
          compare: int | None = None, sim: float | None = None) -> dict[str, Any]:  # fmt: skip
    """A DetectInfoText as the real API fills it for a text-only flow (Ocr*/NFC fields null)."""
    msg = _MESSAGES.get(err) if err is not None else None
    text: dict[str, Any] = dict.fromkeys(
        ("OcrNation", "OcrAddress", "OcrBirth", "OcrAuthority", "OcrValidDate", "OcrName", "OcrIdCard",
         "OcrGender", "Location", "LivenessInfoTag", "Mobile", "NFCRequestIds", "NFCBillingCounts",
         "PassNo", "VisaNum", "LivenessActionSequence")
    )  # fmt: skip
    sim_text = f"{sim:.2f}" if sim is not None else None
    text.update(
        ErrCode=err, ErrMsg=msg, IdCard=flow.id_number, UseIDType=0, Name=flow.name, IdInfoFrom="其他",
        LiveStatus=live, LiveMsg=_MESSAGES.get(live) if live is not None else None,
        Comparestatus=compare, Comparemsg=_MESSAGES.get(compare) if compare is not None else None,
        Sim=sim_text, Extra=flow.extra, CompareLibType="权威库" if compare is not None else None,
        LivenessMode=3 if live is not None else None, LivenessDetail=[],
    )  # fmt: skip
    if live is not None:
        text["LivenessDetail"] = [{
            "ReqTime": str(int(state.now() * 1000)), "Seq": uuid.uuid4().hex, "Idcard": flow.id_number,
            "Name": flow.name, "Sim": sim_text, "IsNeedCharge": err in (0, 1002, 2006, 2016),
            "Errcode": err, "Errmsg": msg, "Livestatus": live, "Livemsg": text["LiveMsg"],
            "Comparestatus": compare, "Comparemsg": text["Comparemsg"], "CompareLibType": "权威库",
            "LivenessMode": 3,
        }]  # fmt: skip
    return text


def _perform(state: SimState, flow: Flow, outcome: str) -> dict[str, Any]:
    """The Text of a finished flow (caller holds the lock)."""
    if state.now() - flow.created > FLOW_TTL:
        return _text(state, flow, 15)
    if outcome == "cancel":
        return _text(state, flow, 17)
    if outcome == "liveness_fail":
        return _text(state, flow, 1002, live=1002)
    found = state.people.lookup(flow.name, flow.id_number)
    if found != MATCH:
        code = 2006 if found == NAME_MISMATCH else 2005
        return _text(state, flow, code, live=0, compare=code)
    if outcome == "other_person":
        return _text(state, flow, 2016, live=0, compare=2016, sim=state.rng.uniform(20, 60))
    return _text(state, flow, 0, live=0, compare=0, sim=state.rng.uniform(80, 99))


def _detect_auth(state: SimState, p: dict[str, Any]) -> dict[str, Any]:
    _check_params(p, DETECT_AUTH_PARAMS, ("RuleId", "IdCard", "Name"))
    if p["RuleId"] not in state.rule_ids:
        raise ApiError("InvalidParameterValue.RuleIdNotExist", "RuleId不存在，请到人脸核身控制台申请。")
    if not valid_id_number(p["IdCard"]):
        raise ApiError("FailedOperation.IdFormatError", "输入的身份证号有误。")
    if not 1 <= len(p["Name"]) <= 32:
        raise ApiError("FailedOperation.NameFormatError", "输入的姓名有误。")
    for name in ("RedirectUrl", "Extra"):
        if len(p.get(name) or "") > 1024:
            raise ApiError("InvalidParameterValue", f"The parameter `{name}` is longer than 1024 characters.")
    token = str(uuid.uuid4()).upper()
    with state.lock:
        state.flows[token] = Flow(token=token, rule_id=p["RuleId"], name=p["Name"], id_number=p["IdCard"],
                                  extra=p.get("Extra"), created=state.now())  # fmt: skip
    return {"Url": f"https://faceid.qq.com/api/h5/verify?token={token}", "BizToken": token}


def _get_info(state: SimState, p: dict[str, Any]) -> dict[str, Any]:
    _check_params(p, GET_INFO_PARAMS, ("BizToken", "RuleId"))
    if p.get("Encryption") or p.get("IsEncryptResponse"):
        raise ApiError("UnsupportedOperation", "The simulator does not encrypt responses.")
    with state.lock:
        if str(p.get("InfoType", "0")) != "1":
            state.calls["image_requests"] += 1
        flow = state.flows.get(p["BizToken"])
        if flow is None or flow.rule_id != p["RuleId"]:
            if p["RuleId"] not in state.rule_ids:
                raise ApiError(
                    "InvalidParameterValue.RuleIdNotExist", "RuleId不存在，请到人脸核身控制台申请。"
                )
            raise ApiError("InvalidParameterValue.BizTokenIllegal", "BizToken不合法。")
        age = state.now() - flow.created
        if age > RESULT_TTL:
            raise ApiError("InvalidParameterValue.BizTokenExpired", "BizToken过期。")
        text = flow.text
        if text is None and age > FLOW_TTL:
            text = _text(state, flow, 15)  # nobody finished in time: the flow is over
        elif text is None and state.auto:
            text = flow.text = _perform(state, flow, state.auto)
    # Before the citizen finishes, the verdict fields are null (取不到有效值).
    return {"Text": text or _text(state, flow, None)}


def _check_params(p: dict[str, Any], allowed: set[str], required: tuple[str, ...]) -> None:
    unknown = sorted(set(p) - allowed)
    if unknown:
        raise ApiError("UnknownParameter", f"The parameter `{unknown[0]}` is not recognized.")
    for name in required:
        if p.get(name) in (None, ""):
            raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
        if not isinstance(p[name], str):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be a string.")


def _api(state: SimState) -> Response | tuple:
    request_id = tc3.new_request_id()
    with state.lock:
        state.calls["total"] += 1
        faults = dict(state.faults)
        injected = state.faults["errors"].pop(0) if state.faults["errors"] else None
    if faults["latency_ms"]:
        time.sleep(float(faults["latency_ms"]) / 1000)
    if faults["down"]:
        with state.lock:
            state.calls["http_5xx"] += 1
        return Response(
            "<html><body><h1>503 Service Unavailable</h1></body></html>", 503, mimetype="text/html"
        )
    try:
        verified = tc3.verify_request(
            method=request.method, query=request.query_string.decode(), headers=request.headers,
            body=request.get_data(), service="faceid", secret_keys=state.secrets, now=time.time(),
        )  # fmt: skip
        with state.lock:
            state.calls[f"action:{verified.action}"] += 1
        if verified.action not in ACTIONS:
            raise ApiError(
                "InvalidAction", f"The action `{verified.action}` is not found for service `faceid`."
            )
        if verified.version != VERSION:
            raise ApiError("NoSuchVersion", f"The version `{verified.version}` is not found.")
        if verified.region and verified.region not in REGIONS:
            raise ApiError("UnsupportedRegion", f"The region `{verified.region}` is not supported by faceid.")
        if request.method != "POST" or request.mimetype != "application/json":
            raise ApiError("InvalidParameter", "The simulator accepts POST application/json only.")
        if injected:
            raise ApiError(injected, "Injected fault.")
        try:
            params = json.loads(request.get_data() or b"{}")
        except ValueError as exc:
            raise ApiError("FailedOperation.JsonParseFail", "Failed to parse the request body.") from exc
        if not isinstance(params, dict):
            raise ApiError("FailedOperation.JsonParseFail", "The request body must be a JSON object.")
        handler = _detect_auth if verified.action == "DetectAuth" else _get_info
        body = handler(state, params)
        with state.lock:
            state.calls["ok"] += 1
        if faults["malformed_response"]:
            return Response("<html>upstream answered garbage</html>", 200, mimetype="text/plain")
        return jsonify({"Response": {**body, "RequestId": request_id}})
    except (tc3.Tc3Error, ApiError) as exc:
        with state.lock:
            state.errors[exc.code] += 1
        return jsonify(tc3.error_envelope(exc.code, exc.message, request_id))


def _register_control(app: Flask, state: SimState) -> None:
    def bad(message: str, status: int = 400) -> tuple[Response, int]:
        return jsonify({"error": message}), status

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"ok": True})

    @app.post("/_sim/people")
    def people() -> Response | tuple:
        body = request.get_json(silent=True) or {}
        if not isinstance(body.get("name"), str) or not isinstance(body.get("id_number"), str):
            return bad("name and id_number are required strings")
        state.people.add(body["name"], body["id_number"])
        return jsonify({"ok": True})

    @app.get("/_sim/calls")
    def calls() -> Response:
        with state.lock:
            by_action = {k.split(":", 1)[1]: v for k, v in state.calls.items() if k.startswith("action:")}
            return jsonify({"total": state.calls["total"], "ok": state.calls["ok"], "by_action": by_action,
                            "errors": dict(state.errors), "http_5xx": state.calls["http_5xx"],
                            "image_requests": state.calls["image_requests"]})  # fmt: skip

    @app.route("/_sim/faults", methods=["GET", "POST"])
    def faults() -> Response | tuple:
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or set(body) - _FAULT_KEYS:
                return bad(f"body must be an object with keys from {sorted(_FAULT_KEYS)}")
            with state.lock:
                state.faults.update(body)
                state.faults["errors"] = list(state.faults["errors"])
        with state.lock:
            return jsonify(state.faults)

    @app.post("/_sim/advance")
    def advance() -> Response:
        seconds = float((request.get_json(silent=True) or {}).get("seconds", 0))
        with state.lock:
            state.offset += seconds
            return jsonify({"offset": state.offset})

    @app.post("/_sim/face/perform")
    def perform() -> Response | tuple:
        body = request.get_json(silent=True) or {}
        if body.get("outcome") not in OUTCOMES:
            return bad(f"outcome must be one of {list(OUTCOMES)}")
        with state.lock:
            flow = state.flows.get(str(body.get("ref")))
            if flow is None:
                return bad("unknown BizToken", 404)
            if flow.text is not None:
                return bad("this BizToken was already used (返回码 14)", 409)
            flow.text = _perform(state, flow, body["outcome"])
            return jsonify({"ref": flow.token, "err_code": flow.text["ErrCode"]})

    @app.post("/_sim/face/auto")
    def auto() -> Response | tuple:
        outcome = (request.get_json(silent=True) or {}).get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            return bad(f"outcome must be null or one of {list(OUTCOMES)}")
        with state.lock:
            state.auto = outcome
        return jsonify({"outcome": outcome})

    @app.get("/_sim/face/<ref>")
    def flow_state(ref: str) -> Response | tuple:
        with state.lock:
            flow = state.flows.get(ref)
            if flow is None:
                return bad("unknown BizToken", 404)
            return jsonify({"ref": ref, "performed": flow.text is not None,
                            "err_code": flow.text["ErrCode"] if flow.text else None,
                            "age_seconds": state.now() - flow.created})  # fmt: skip


def create_simulator(config: Mapping[str, Any]) -> Flask:
    """The simulator app for the account (TENCENT_SECRET_ID/KEY) and rule (FACEID_RULE_ID) in `config`."""
    state = SimState(
        secrets={config["TENCENT_SECRET_ID"]: config["TENCENT_SECRET_KEY"]},
        rule_ids={str(config["FACEID_RULE_ID"])},
    )
    state.reset()
    app = Flask("faceid_simulator")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["faceid_sim"] = state
    app.add_url_rule("/", "api", lambda: _api(state), methods=["GET", "POST"])
    _register_control(app, state)
    return app


def serve(app: Any, host: str, port: int) -> None:
    """Serve in the foreground with keep-alive connections, as Tencent Cloud's gateway keeps them."""
    from integrations.simulator_server import serve_keepalive

    serve_keepalive(app, host, port)


def main() -> None:
    """Serve on FACEID_ENDPOINT (default 127.0.0.1:9103) with the current configuration."""
    from config import load_config

    cfg = vars(load_config())
    host, _, port = cfg["FACEID_ENDPOINT"].rpartition(":")
    serve(create_simulator(cfg), host or "127.0.0.1", int(port))


if __name__ == "__main__":
    main()
