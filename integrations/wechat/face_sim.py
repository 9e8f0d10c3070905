"""WeChat face verification 2.0 (城市服务 face identify) inside the WeChat simulator.

Registered by integrations/wechat/simulator.py on the same app, access tokens and users.

WeChat API (HTTP 200 with {"errcode", "errmsg"} on errors; a valid access_token is required:
41001 missing, 40001 unknown, 42001 expired):
  POST cityservice/face/identify/getverifyid?access_token
       {out_seq_no, cert_info{cert_type, cert_name, cert_no}, openid}
       → {errcode:0, errmsg:"ok", verify_id, expires_in:3600}
       40003 openid is not a user of this mini-program; 40097 out_seq_no not 5-32 of
       [A-Za-z0-9_-], already used by this app, or cert_type other than IDENTITY_CARD;
       47001 a field missing or of the wrong type.
  POST cityservice/face/identify/queryverifyinfo?access_token
       {verify_id, out_seq_no, cert_hash, openid} → {errcode:0, errmsg:"ok", verify_ret}
       84001 unknown verify_id, or expired before the face was done (WeChat's "invalid identify
       id"); 40003 openid not a user of the app; 40097 openid, out_seq_no or cert_hash differ
       from getverifyid (WeChat checks cert_info and openid and answers an errcode, never a
       verify_ret, when they differ); 47001 a field missing.
       cert_hash = lowercase hex SHA-256 of "cert_type=B64&cert_name=B64&cert_no=B64", each
       value standard base64 of its UTF-8 bytes, recomputed from what getverifyid received.
       verify_ret: 10000 passed (the only pass), 10001 bad parameter (malformed ID number),
       10002 face detection / liveness failed, 10003 ID mismatch (not this person, or name +
       ID number not a registered resident), 90004 the user cancelled; 0 while the user has
       not finished (an assumption: WeChat does not document the answer before completion).
  A performed result stays queryable for 24 hours; verify_id is single use (one face).

Control API (JSON, unsigned):
  POST /_sim/people {name, id_number}       register a real person (seeded with DEMO_PEOPLE)
  POST /_sim/advance {seconds}              move the face clock forward (verify_id expiry only;
                                            access tokens and login codes follow core.clock)
  POST /_sim/face/perform {ref, outcome}    the user does the face for verify_id `ref`:
       outcome pass | liveness_fail | other_person | cancel; 404 unknown ref, 409 expired or
       already performed, 400 bad outcome
  POST /_sim/face/auto {outcome | null}     outcome assumed for unperformed, unexpired
                                            verify_ids when queried (null = still pending)
  POST /_sim/faults {down?, latency_ms?, errors?, bad_response_signature?}
       down: every API call answers HTTP 503; latency_ms: every API call waits first;
       errors: [errcode, ...] answered by the next face API calls in order (e.g. -1 busy,
       45009 frequency limit); bad_response_signature is accepted and ignored (WeChat does not
       sign responses). The older {endpoint, errcode|http_status|delay, times} form still works.
  GET  /_sim/calls                          {counts: {endpoint: n}, errors: {endpoint: n}}
  POST /_sim/reset                          also forgets sessions, people added, faults, offset
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request

from core import clock
from integrations.realname.people import MATCH, PeopleRegister
from integrations.wechat.sim_state import SimState, WxError

GET_VERIFY_ID = "cityservice/face/identify/getverifyid"
QUERY_VERIFY_INFO = "cityservice/face/identify/queryverifyinfo"
FACE_ENDPOINTS = (GET_VERIFY_ID, QUERY_VERIFY_INFO)
VERIFY_ID_TTL = 3600
RESULT_RETENTION = 86400
OUTCOMES = ("pass", "liveness_fail", "other_person", "cancel")
FAULT_KEYS = frozenset({"down", "latency_ms", "errors", "bad_response_signature"})

RET_PENDING = 0
RET_PASSED = 10000
RET_BAD_PARAMETER = 10001
RET_LIVENESS_FAILED = 10002
RET_ID_MISMATCH = 10003
RET_USER_CANCELLED = 90004  # "用户在识别过程中取消"

ERR_INVALID_OPENID = 40003
ERR_INVALID_ARGS = 40097
ERR_DATA_FORMAT = 47001
ERR_INVALID_VERIFY_ID = 84001

_OUT_SEQ_NO = re.compile(r"[A-Za-z0-9_-]{5,32}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PURGE_EVERY = 1000


def expected_cert_hash(cert_type: str, cert_name: str, cert_no: str) -> str:
    """WeChat's cert_hash, computed here independently of the client's implementation."""
    pairs = (("cert_type", cert_type), ("cert_name", cert_name), ("cert_no", cert_no))
    text = "&".join(f"{k}={base64.b64encode(v.encode('utf-8')).decode('ascii')}" for k, v in pairs)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _well_formed_id(cert_no: str) -> bool:
    """18 characters with a valid GB 11643 check character."""
    if not re.fullmatch(r"[0-9]{17}[0-9Xx]", cert_no):
        return False
    total = sum(int(d) * w for d, w in zip(cert_no[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == cert_no[17].upper()


@dataclass
class Session:
    verify_id: str
    appid: str
    openid: str
    out_seq_no: str
    cert_type: str
    cert_name: str
    cert_no: str
    expires_at: float
    verify_ret: int | None = None
    performed_at: float | None = None

    def gone(self, now: float) -> bool:
        """WeChat forgot it: expired unperformed, or a result past its retention."""
        if self.performed_at is None:
            return now >= self.expires_at
        return now >= self.performed_at + RESULT_RETENTION

    def __repr__(self) -> str:  # the simulator never prints a name or ID number either
        return f"Session(verify_id={self.verify_id[:8]}…, verify_ret={self.verify_ret})"


class FaceSim:
    """Face sessions, the population register and the conventional fault switches."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.lock = state.lock  # one external system, one lock
        self.people = PeopleRegister()
        self.reset()

    def reset(self) -> None:
        """Forget sessions, added people, faults and the clock offset."""
        with self.lock:
            self.people.reset()
            self.sessions: dict[str, Session] = {}
            self.seq_nos: set[tuple[str, str]] = set()
            self.offset = 0.0
            self.auto: str | None = None
            self.down = False
            self.latency_ms = 0
            self.errors: list[int] = []
            self._created = 0

    def now(self) -> float:
        return clock.timestamp() + self.offset

    # -- faults --------------------------------------------------------------------------

    def set_faults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Apply the conventional fault switches present in `data`; returns them all."""
        with self.lock:
            if "down" in data:
                self.down = bool(data["down"])
            if "latency_ms" in data:
                self.latency_ms = max(int(data["latency_ms"] or 0), 0)
            if "errors" in data:
                self.errors = [int(code) for code in data["errors"] or []]
            return {"down": self.down, "latency_ms": self.latency_ms, "errors": list(self.errors),
                    "bad_response_signature": "not applicable: WeChat does not sign responses"}  # fmt: skip

    def before_call(self, endpoint: str) -> Response | None:
        """Latency, outage (HTTP 503) and queued errcodes, before an API call is answered."""
        with self.lock:
            latency, down = self.latency_ms, self.down
        if latency:
            time.sleep(latency / 1000)  # outside the lock: other calls keep flowing
        if down:
            return Response("simulated outage", status=503)
        with self.lock:
            if endpoint in FACE_ENDPOINTS and self.errors:
                raise WxError(self.errors.pop(0), "system error")
        return None

    # -- API -----------------------------------------------------------------------------

    def _user_of(self, appid: str, openid: Any) -> str:
        if not isinstance(openid, str) or not openid:
            raise WxError(ERR_DATA_FORMAT, "data format error, openid")
        user = self.state.users.get(openid)
        if user is None or user.appid != appid:
            raise WxError(ERR_INVALID_OPENID, "invalid openid")
        return openid

    def get_verify_id(self, appid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """getverifyid: register a face session for a user of the app."""
        out_seq_no, cert = body.get("out_seq_no"), body.get("cert_info")
        if not isinstance(out_seq_no, str) or not isinstance(cert, dict):
            raise WxError(ERR_DATA_FORMAT, "data format error")
        fields = [cert.get(k) for k in ("cert_type", "cert_name", "cert_no")]
        if not all(isinstance(v, str) and v for v in fields):
            raise WxError(ERR_DATA_FORMAT, "data format error, cert_info")
        cert_type, cert_name, cert_no = fields
        with self.lock:
            openid = self._user_of(appid, body.get("openid"))
            if not _OUT_SEQ_NO.fullmatch(out_seq_no):
                raise WxError(ERR_INVALID_ARGS, "invalid args, out_seq_no")
            if cert_type != "IDENTITY_CARD":
                raise WxError(ERR_INVALID_ARGS, "invalid args, cert_type")
            if (appid, out_seq_no) in self.seq_nos:
                raise WxError(ERR_INVALID_ARGS, "invalid args, out_seq_no duplicated")
            self._purge()
            session = Session(
                verify_id=secrets.token_urlsafe(48), appid=appid, openid=openid, out_seq_no=out_seq_no,
                cert_type=cert_type, cert_name=cert_name, cert_no=cert_no,
                expires_at=self.now() + VERIFY_ID_TTL,
            )  # fmt: skip
            self.sessions[session.verify_id] = session
            self.seq_nos.add((appid, out_seq_no))
            return {"errcode": 0, "errmsg": "ok", "verify_id": session.verify_id, "expires_in": VERIFY_ID_TTL}

    def query_verify_info(self, appid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """queryverifyinfo: the result, once openid, out_seq_no and cert_hash all match."""
        verify_id = body.get("verify_id")
        fields = [body.get(k) for k in ("verify_id", "out_seq_no", "cert_hash")]
        if not all(isinstance(v, str) and v for v in fields):
            raise WxError(ERR_DATA_FORMAT, "data format error")
        with self.lock:
            now = self.now()
            session = self.sessions.get(verify_id)  # type: ignore[arg-type]
            if session is None or session.appid != appid or session.gone(now):
                raise WxError(ERR_INVALID_VERIFY_ID, "invalid identify id")
            if self._user_of(appid, body.get("openid")) != session.openid:
                raise WxError(ERR_INVALID_ARGS, "invalid args, openid not match")
            if body["out_seq_no"] != session.out_seq_no:
                raise WxError(ERR_INVALID_ARGS, "invalid args, out_seq_no not match")
            expected = expected_cert_hash(session.cert_type, session.cert_name, session.cert_no)
            if not secrets.compare_digest(str(body["cert_hash"]), expected):
                raise WxError(ERR_INVALID_ARGS, "invalid args, cert_hash not match")
            if session.verify_ret is None and self.auto is not None:
                self._finish(session, self.auto, now)
            ret = RET_PENDING if session.verify_ret is None else session.verify_ret
            return {"errcode": 0, "errmsg": "ok", "verify_ret": ret}

    # -- the phone -------------------------------------------------------------------------

    def perform(self, ref: str, outcome: str) -> dict[str, Any]:
        """wx.requestFacialVerify finished with `outcome` (KeyError unknown, ValueError refused)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        with self.lock:
            now = self.now()
            session = self.sessions.get(ref)
            if session is None:
                raise KeyError(ref)
            if session.performed_at is not None:
                raise PermissionError("verify_id already used")
            if session.gone(now):
                raise PermissionError("verify_id expired")
            self._finish(session, outcome, now)
            return {"verify_id": ref, "verify_ret": session.verify_ret}

    def _finish(self, session: Session, outcome: str, now: float) -> None:
        if outcome == "cancel":
            ret = RET_USER_CANCELLED
        elif not _well_formed_id(session.cert_no):
            ret = RET_BAD_PARAMETER
        elif outcome == "liveness_fail":
            ret = RET_LIVENESS_FAILED
        elif outcome == "other_person":
            ret = RET_ID_MISMATCH
        else:  # a live face of the cert holder: passes only for a registered resident
            real = self.people.lookup(session.cert_name, session.cert_no) == MATCH
            ret = RET_PASSED if real else RET_ID_MISMATCH
        session.verify_ret, session.performed_at = ret, now

    def _purge(self) -> None:
        self._created += 1
        if self._created % _PURGE_EVERY:
            return
        now = self.now()
        for verify_id in [v for v, s in self.sessions.items() if s.gone(now)]:
            del self.sessions[verify_id]


def register_api(api: Callable[[str, str], Callable], face: FaceSim, json_body: Callable[[], dict]) -> None:
    """Add the two face endpoints through the simulator's `api` decorator."""

    @api(GET_VERIFY_ID, "POST")
    def get_verify_id() -> dict:
        appid = face.state.app_for_token(request.args.get("access_token"))
        return face.get_verify_id(appid, json_body())

    @api(QUERY_VERIFY_INFO, "POST")
    def query_verify_info() -> dict:
        appid = face.state.app_for_token(request.args.get("access_token"))
        return face.query_verify_info(appid, json_body())


def register_control(app: Flask, face: FaceSim) -> None:
    """Add /_sim/people, /_sim/advance, /_sim/face/perform and /_sim/face/auto."""

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def fail(status: int, message: str) -> tuple[Response, int]:
        return jsonify({"error": message}), status

    @app.post("/_sim/people")
    def add_person() -> Any:
        data = body()
        name, id_number = data.get("name"), data.get("id_number")
        if not isinstance(name, str) or not name or not isinstance(id_number, str) or not id_number:
            return fail(400, "name and id_number are required")
        face.people.add(name, id_number)
        return {"ok": True}, 201

    @app.post("/_sim/advance")
    def advance() -> Any:
        try:
            seconds = float(body().get("seconds", 0))
        except (TypeError, ValueError):
            return fail(400, "seconds must be a number")
        with face.lock:
            face.offset += max(seconds, 0.0)
            return {"offset": face.offset}

    @app.post("/_sim/face/perform")
    def perform() -> Any:
        data = body()
        try:
            return face.perform(str(data.get("ref") or ""), str(data.get("outcome") or ""))
        except ValueError as exc:
            return fail(400, str(exc))
        except KeyError:
            return fail(404, "unknown verify_id")
        except PermissionError as exc:
            return fail(409, str(exc))

    @app.post("/_sim/face/auto")
    def auto() -> Any:
        outcome = body().get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            return fail(400, f"outcome must be null or one of {', '.join(OUTCOMES)}")
        with face.lock:
            face.auto = outcome
        return {"outcome": outcome}
