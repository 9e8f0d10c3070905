"""Provincial government-service platform simulator: intake (申办), status query, stage callbacks.

Speaks docs/province.md exactly; the production client (integrations/province/client.py) runs
against it unchanged with PROVINCE_BASE_URL=http://127.0.0.1:9106/. Tests serve it on a random
port; `python -m cli.simulators province --port 9106` serves it for `make run`.

API (signed both ways: X-App-Id, X-Timestamp, X-Nonce, X-Signature-Method, X-Signature over
"<METHOD>\\n<PATH>\\n<TS>\\n<NONCE>\\n<SM3 of body>"; SM3-HMAC with PROVINCE_SECRET, or SM2 with
yiwang's public key PROVINCE_SM2_PUBLIC_KEY / the province's key PROVINCE_SIM_SM2_PRIVATE_KEY):
- POST /gov/v1/intake   a submission, resubmission or withdrawal. Signature, timestamp (±300 s)
  and nonce first (401 E401), then the SM4 fields (applicant.name / id_number / phone,
  base64(iv ‖ SM4-CBC)) must decrypt (400 E4002), then validation (400 E4001, a Chinese message
  naming the field; an ID number needs a valid GB 11643 check character; each material names
  its material_id, kind and name). Keyed by (sblsh,
  version, action): a repeat returns the original receipt with "duplicate": true and is counted.
  A resubmission or withdrawal of an unknown case is 404 E404.
- POST /gov/v1/status {sblsh}  the received versions and every stage event so far (404 E404).
- Each first receipt of a submit or resubmit records a "received" stage event; the schedule
  (PROVINCE_SIM_SCHEDULE, e.g. "accepted:20,completed:60" seconds after receipt; "off" = manual)
  or the control API moves the case on. Every event is POSTed, signed, to the callback URL
  (PROVINCE_SIM_CALLBACK_URL) from a dispatcher thread, retried with backoff until yiwang
  answers 200 (for up to 10 minutes).

Faults (intake and status only; set with PROVINCE_SIM_FAULTS as JSON or POST /_sim/faults):
error_rate (503), timeout_rate + timeout_seconds + timeout_record ("before": the case is
recorded, then the answer is late; "after": late, then nothing recorded; "random": either),
reset_rate (the TCP connection is reset, no HTTP answer), latency_ms, rate_limit (requests/s,
then 429, Retry-After: 1; default PROVINCE_SIM_RATE_LIMIT), outage (every call 503) and
outage_until (unix time), duplicate_callbacks and reorder_callbacks (fractions of events sent
twice, or held back until the case's next event or 2 s), seed.

Control API (JSON, unsigned, under /_sim/):
- GET  /_sim/                           this text
- POST /_sim/reset                      forget cases, counts, faults; back to the configured schedule
- GET  /_sim/stats                      {cases, received, duplicates, requests, by_status, resets,
       timeouts, rate_limited, auth_failures {reason: n}, callbacks {delivered, retried, failed, ...}}
- GET  /_sim/cases                      {sblsh: {stage, versions, duplicates}}
- GET  /_sim/cases/<sblsh>              the case: receipts, events, the applicant masked (+ decrypted?)
- POST /_sim/cases/<sblsh>/accept | review | special | special_end | deliver      {reason?, drop_callback?}
- POST /_sim/cases/<sblsh>/supplement   {materials: [...], fields: [...], reason}
- POST /_sim/cases/<sblsh>/refuse       {reason}            (not_accepted, code 4)
- POST /_sim/cases/<sblsh>/complete     {result: approved|denied, reason}   (result_code 6 / 7)
  A move that makes no sense from the case's stage is 409. drop_callback records the stage
  without calling back (for reconciliation tests).
- POST /_sim/events/<sblsh>/resend {seq}  send one event again
- POST /_sim/callback_url {url}         where callbacks go
- GET|POST /_sim/faults                 read or change the faults
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request

from integrations.province import gm, signing
from integrations.province.sim_state import (
    RESULT_CODES,
    Case,
    SimState,
    id_number_ok,
    now_iso,
)

RESET_MARK = "province_sim.reset"
INTAKE_PATH = "/gov/v1/intake"
STATUS_PATH = "/gov/v1/status"
EVALUATION_PATH = "/gov/v1/evaluations"
# GB/T 39046 numbering (the reference profile's): 1 非常满意 … 5 非常不满意; 4 and 5 are 差评.
ACTIONS = ("submit", "resubmit", "withdraw")
MATERIAL_KINDS = ("upload", "reuse", "ecert", "shared")
# stage → the stages it may follow
MOVES = {
    "accepted": ("received",),
    # A supplement never given closes the case (docs/province.md): not accepted (逾期未补正)
    # before acceptance, completed (usually denied) after it.
    "not_accepted": ("received", "supplement"),
    "supplement": ("received", "accepted", "in_review"),
    "in_review": ("accepted", "received"),  # from received: a supplement answered after acceptance
    "special": ("in_review",),
    "special_end": ("special",),
    "completed": ("accepted", "in_review", "supplement"),
    "delivered": ("completed",),
}


def _fits_acceptance(case: Any, stage: str) -> bool:
    """Acceptance (受理) happens once; after it a received resubmission goes back to review."""
    if stage in ("accepted", "not_accepted"):
        return not case.accepted
    if stage == "in_review" and case.stage == "received":
        return case.accepted
    if stage == "completed" and case.stage == "supplement":
        return case.accepted
    return True


CONTROL_STAGES = {
    "accept": "accepted", "refuse": "not_accepted", "supplement": "supplement", "review": "in_review",
    "special": "special", "special_end": "special_end", "complete": "completed", "deliver": "delivered",
}  # fmt: skip


def _mask(value: str) -> str:
    return value[:3] + "*" * max(0, len(value) - 7) + value[-4:] if len(value) > 7 else "*" * len(value)


class Province:
    def __init__(self, config: Mapping[str, Any]) -> None:
        alg = config.get("PROVINCE_SIGNING") or signing.ALG_HMAC
        self.creds = signing.Credentials(
            alg=alg, app_id=str(config["PROVINCE_APP_ID"]), secret=str(config["PROVINCE_SECRET"]),
            own_private_key=config.get("PROVINCE_SIM_SM2_PRIVATE_KEY"),
            own_public_key=config.get("PROVINCE_PEER_SM2_PUBLIC_KEY"),
            peer_public_key=config.get("PROVINCE_SM2_PUBLIC_KEY"),
            user_id=str(config.get("PROVINCE_SM2_USER_ID") or "1234567812345678"),
        )  # fmt: skip
        self.key = gm.sm4_key(str(config["PROVINCE_SM4_KEY"]))
        fields = (
            config.get("PROVINCE_SIM_ENCRYPTED_FIELDS")
            or "applicant.name,applicant.id_number,applicant.phone"
        )
        self.encrypted = [f.split(".", 1)[1] for f in str(fields).split(",") if f.startswith("applicant.")]
        self.state = SimState(
            self.creds, str(config.get("PROVINCE_SIM_CALLBACK_URL") or ""),
            float(config.get("PROVINCE_SIM_RATE_LIMIT") or 0), str(config.get("PROVINCE_SIM_SCHEDULE") or ""),
        )  # fmt: skip
        faults = config.get("PROVINCE_SIM_FAULTS")
        self.initial_faults = json.loads(faults) if isinstance(faults, str) and faults else dict(faults or {})
        self.state.set_faults(self.initial_faults)

    # --- answers -------------------------------------------------------------------------

    def answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        raw = json.dumps(body, ensure_ascii=False).encode()
        with self.state.lock:
            self.state.by_status[str(status)] += 1
        signed = signing.sign_response(self.creds, status, raw)
        return Response(raw, status=status, headers=signed | (headers or {}), mimetype="application/json")

    def error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return self.answer(status, {"code": code, "message": message}, headers)

    def _reset_connection(self) -> Response:
        sock = request.environ.get("werkzeug.socket")
        with self.state.lock:
            self.state.counts["resets"] += 1
        if sock is not None:
            # Linger 0 makes the close a TCP RST. The server's file objects still hold the
            # socket, so close its descriptor by pointing it at /dev/null: the number stays
            # taken (no other connection can get it) and the server's late writes just fail.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, sock.fileno())
            finally:
                os.close(null)
        request.environ[RESET_MARK] = True  # _QuietReset ends the request without a word
        return Response(b"", status=500)  # never reaches the client

    def gate(self) -> tuple[Response | None, str | None]:
        """Faults and the rate limit before any work; (answer, timeout mode)."""
        st = self.state
        with st.lock:
            st.counts["requests"] += 1
            faults = dict(st.faults)
        if faults.get("latency_ms"):
            time.sleep(float(faults["latency_ms"]) / 1000)
        if faults.get("outage") or float(faults.get("outage_until") or 0) > time.time():
            return self.error(503, "E503", "平台维护中"), None
        if not st.take_token():
            with st.lock:
                st.counts["rate_limited"] += 1
            return self.error(429, "E429", "请求过于频繁", {"Retry-After": "1"}), None
        if st.roll("reset_rate"):
            return self._reset_connection(), None
        if st.roll("error_rate"):
            return self.error(503, "E503", "服务暂不可用"), None
        if st.roll("timeout_rate"):
            mode = faults.get("timeout_record") or "random"
            if mode == "random":
                mode = "before" if st.rng.random() < 0.5 else "after"
            with st.lock:
                st.counts["timeouts"] += 1
            if mode == "after":
                time.sleep(float(faults.get("timeout_seconds") or 10))
                return self.error(503, "E503", "处理超时"), None
            return None, "before"
        return None, None

    def authenticate(self, body: bytes) -> Response | None:
        try:
            signing.verify_request(
                self.creds, "POST", request.path, request.headers, body, now=time.time(),
                nonce_seen=self.state.nonces.seen,
            )  # fmt: skip
        except signing.SignatureError as exc:
            with self.state.lock:
                self.state.auth_failures[exc.code] += 1
            return self.error(401, "E401", f"签名校验失败：{exc.code}")
        return None

    def signed_json(self) -> tuple[dict[str, Any] | None, Response | None, str | None]:
        """The faults gate, the signature and a JSON object body, as every API call checks them:
        (body, None, timeout mode) or (None, the refusal, None)."""
        answer, timeout = self.gate()
        if answer is not None:
            return None, answer, None
        body = request.get_data()
        refused = self.authenticate(body)
        if refused is not None:
            return None, refused, None
        try:
            data = json.loads(body)
            assert isinstance(data, dict)
        except (ValueError, AssertionError):
            return None, self.error(400, "E4001", "请求体不是 JSON 对象"), None
        return data, None, timeout

    # --- intake --------------------------------------------------------------------------

    def intake(self) -> Response:
        data, refused, timeout = self.signed_json()
        if data is None:
            return refused  # type: ignore[return-value]
        problem = self.validate(data)
        if problem is not None:
            return problem
        result = self.record(data)
        if timeout == "before":
            time.sleep(float(self.state.faults.get("timeout_seconds") or 10))
        return result

    def validate(self, data: dict[str, Any]) -> Response | None:
        sblsh, version, action = data.get("sblsh"), data.get("version"), data.get("action")
        if not isinstance(sblsh, str) or not 0 < len(sblsh) <= 64:
            return self.error(400, "E4001", "申办流水号（sblsh）缺失或过长")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            return self.error(400, "E4001", "版本号（version）须为正整数")
        if action not in ACTIONS:
            return self.error(400, "E4001", "操作（action）须为 submit、resubmit 或 withdraw")
        if not isinstance(data.get("item_code"), str) or not data["item_code"]:
            return self.error(400, "E4001", "事项编码（item_code）缺失")
        if not isinstance(data.get("channel"), str):
            return self.error(400, "E4001", "申报渠道（channel）须为字符串代码")
        applicant = data.get("applicant") or {}
        if not isinstance(applicant, dict):
            return self.error(400, "E4001", "申请人（applicant）格式有误")
        plain: dict[str, str] = {}
        for name in self.encrypted:
            if applicant.get(name) is None:
                continue
            try:
                plain[name] = gm.sm4_decrypt_field(self.key, str(applicant[name]))
            except gm.FieldDecryptError:
                return self.error(400, "E4002", f"申请人字段 {name} 无法解密")
        if action != "withdraw":
            problem = self._materials_problem(data.get("materials"))
            if problem is not None:
                return self.error(400, "E4001", problem)
        if action == "submit":
            if not plain.get("name"):
                return self.error(400, "E4001", "申请人姓名（applicant.name）缺失")
            if not id_number_ok(plain.get("id_number", "")):
                return self.error(400, "E4001", "申请人身份证号码（applicant.id_number）无效")
        data["_plain"] = plain
        return None

    @staticmethod
    def _materials_problem(materials: Any) -> str | None:
        """Each material names its id, how it was satisfied and its name (材料名称)."""
        if materials is None:
            return None
        if not isinstance(materials, list):
            return "材料（materials）须为列表"
        for i, item in enumerate(materials):
            if not isinstance(item, dict) or not isinstance(item.get("material_id"), str):
                return f"材料 materials[{i}] 缺少材料编码（material_id）"
            if item.get("kind") not in MATERIAL_KINDS:
                return f"材料 materials[{i}] 的提供方式（kind）须为 {'、'.join(MATERIAL_KINDS)} 之一"
            if not isinstance(item.get("name"), str) or not item["name"].strip():
                return f"材料 materials[{i}] 缺少材料名称（name）"
        return None

    def record(self, data: dict[str, Any]) -> Response:
        st = self.state
        key = f"{data['version']}:{data['action']}"
        with st.lock:
            case = st.cases.get(data["sblsh"])
            if case is not None and key in case.receipts:
                case.duplicates += 1
                st.counts["duplicates"] += 1
                return self.answer(200, {"code": "0", **case.receipts[key], "duplicate": True})
            if case is None:
                if data["action"] != "submit":
                    return self.error(404, "E404", "没有该申办流水号的办件")
                plain = data["_plain"]
                applicant = {k: _mask(v) for k, v in plain.items()} | {"decrypted": bool(plain)}
                case = st.cases[data["sblsh"]] = Case(data["sblsh"], data["item_code"], applicant)
            receipt = {"sblsh": case.sblsh, "version": data["version"], "action": data["action"],
                       "receipt_no": st.receipt_no(), "received_at": now_iso()}  # fmt: skip
            case.receipts[key] = receipt
            st.counts["received"] += 1
            if data["action"] == "withdraw":
                for timer in case.timers:
                    timer.cancel()
                case.stage = "withdrawn"
            else:
                case.materials = [
                    {k: m.get(k) for k in ("material_id", "kind", "name")}
                    for m in data.get("materials") or []
                ]
                st.add_event(case, "received", version=data["version"], receipt_no=receipt["receipt_no"])
                st.schedule_case(case, self.scheduled_move)
            return self.answer(200, {"code": "0", **receipt, "duplicate": False})

    def scheduled_move(self, sblsh: str, stage: str) -> None:
        extra = {"result_code": RESULT_CODES["approved"]} if stage == "completed" else {}
        with self.state.lock:
            case = self.state.cases.get(sblsh)
            if stage == "accepted" and case is not None and case.accepted:
                stage = "in_review"  # a resubmission during review: review goes on
        self.move(sblsh, stage, extra)

    def move(
        self, sblsh: str, stage: str, extra: dict[str, Any], send: bool = True
    ) -> tuple[int, dict[str, Any]]:
        with self.state.lock:
            case = self.state.cases.get(sblsh)
            if case is None:
                return 404, {"error": "unknown case"}
            if case.stage not in MOVES.get(stage, ()) or not _fits_acceptance(case, stage):
                return 409, {"error": f"cannot move from {case.stage} to {stage}"}
            return 200, self.state.add_event(case, stage, send=send, **extra)

    # --- status --------------------------------------------------------------------------

    def status(self) -> Response:
        data, refused, _ = self.signed_json()
        if data is None:
            return refused  # type: ignore[return-value]
        sblsh = data.get("sblsh")
        with self.state.lock:
            case = self.state.cases.get(sblsh) if isinstance(sblsh, str) else None
            if case is None:
                return self.error(404, "E404", "没有该申办流水号的办件")
            out = {"code": "0", "sblsh": case.sblsh, "received": list(case.receipts.values()),
                   "events": list(case.events)}  # fmt: skip
        return self.answer(200, out)


def evaluation(province: Any) -> Response:
    """好差评 push: {evaluation_id, projectNo, satisfaction 1-5, assessNumber, pf, userProp,
    evalDetail?, writingEvaluation?}; a grade below 基本满意 needs detail codes or text; the same
    evaluation id again is answered as a duplicate."""
    data, refused, _ = province.signed_json()
    if data is None:
        return refused
    grade = data.get("satisfaction")
    if not isinstance(grade, int) or isinstance(grade, bool) or not 1 <= grade <= 5:
        return province.error(400, "E4001", "满意度（satisfaction）须为 1-5")
    if data.get("assessNumber") not in (1, 2) or not isinstance(data.get("pf"), str):
        return province.error(400, "E4001", "评价次数（assessNumber）或评价渠道（pf）有误")
    if grade >= 4 and not (data.get("evalDetail") or data.get("writingEvaluation")):
        return province.error(400, "E4001", "差评须填写评价详情或文字评价")
    with province.state.lock:
        if data.get("projectNo") not in province.state.cases:
            return province.error(404, "E404", "没有该申办流水号的办件")
        key = str(data.get("evaluation_id") or "")
        duplicate = key in province.state.evaluations
        if not duplicate:
            province.state.evaluations[key] = data
        province.state.counts["evaluations"] += 1
    return province.answer(200, {"code": "0", "duplicate": duplicate})


class _QuietReset:
    """Ends a request whose connection the simulator reset as a dropped connection (which the
    server handles quietly), not as an error writing to a closed socket."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        result = self.app(environ, start_response)
        if environ.get(RESET_MARK):
            raise ConnectionResetError("reset by the simulator")
        return result


def create_simulator(config: Mapping[str, Any]) -> Flask:
    """The simulator app for the PROVINCE_* settings in `config`."""
    from integrations.province.sim_control import register_control

    province = Province(config)
    app = Flask("province_simulator")
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["province_sim"] = province
    app.add_url_rule(INTAKE_PATH, "intake", province.intake, methods=["POST"])
    app.add_url_rule(STATUS_PATH, "status", province.status, methods=["POST"])
    app.add_url_rule(EVALUATION_PATH, "evaluation", lambda: evaluation(province), methods=["POST"])
    register_control(app, province)
    app.wsgi_app = _QuietReset(app.wsgi_app)  # type: ignore[method-assign]
    return app


def main() -> None:
    """Serve on the host and port of PROVINCE_BASE_URL (default 127.0.0.1:9106)."""
    from urllib.parse import urlsplit

    from config import load_config
    from integrations.simulator_server import serve_forever

    cfg = vars(load_config())
    url = urlsplit(cfg["PROVINCE_BASE_URL"])
    serve_forever(create_simulator(cfg), url.hostname or "127.0.0.1", url.port or 9106)


if __name__ == "__main__":
    main()
