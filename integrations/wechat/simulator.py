"""WeChat server-API simulator: the mini-program endpoints yiwang uses, with WeChat's shapes and errcodes.

`create_simulator(config)` registers WECHAT_APPID/WECHAT_SECRET as the mini-program. Served on
127.0.0.1:9101 by `make run` and on a random port by the tests (fixture `wechat_sim`).

WeChat API (answers HTTP 200 with {"errcode", "errmsg"} on errors, as the real one does):
  GET  cgi-bin/token?grant_type=client_credential&appid&secret        40002 40013 40125 41002 41004
  POST cgi-bin/stable_token {grant_type, appid, secret, force_refresh}  same token while valid
  GET  sns/jscode2session?appid&secret&js_code&grant_type=authorization_code
       → {openid, session_key, unionid?}; 40029 bad/used/expired code, 45011 over 100 calls per
       user per minute, 40226 risky user (an extra access_token param is ignored, as WeChat does)
  POST wxa/business/getuserphonenumber?access_token {code} → {errcode:0, phone_info{...}}
  POST cgi-bin/message/subscribe/send?access_token {touser, template_id, page?, data,
       miniprogram_state?, lang?} → {errcode:0, msgid}; 40003 40037 41030 43101 47003
  POST cityservice/face/identify/getverifyid, .../queryverifyinfo: face verification 2.0, see
       integrations/wechat/face_sim.py (protocol, errcodes and its /_sim/ control routes)
  Token errors: 41001 missing, 40001 unknown or superseded, 42001 expired. Wrong HTTP method:
  43001 (GET required) / 43002 (POST required). Malformed JSON body: 47001.

Control API (plays the phone and the WeChat back office; JSON in, JSON out):
  POST /_sim/reset                              back to the seeded state
  POST /_sim/apps {appid, secret}               another mini-program on the same open platform
  POST /_sim/users {openid?, appid?, unionid?, phone?, country_code?}   create a test user
  GET  /_sim/users/<openid>                     the user, with the last session_key issued
  POST /_sim/users/<openid>/login-code          → {code} as wx.login gives it (5 min, single use)
  POST /_sim/users/<openid>/phone-code          → {code} as getPhoneNumber gives it
  POST /_sim/users/<openid>/risky {risky?}      flag (or unflag) a high-risk user
  POST /_sim/templates {template_id?, appid?, fields}   fields: ["thing1", ...] or
                                                {"thing1": "thing", "x": {"type": "enum", "values": [...]}}
  POST /_sim/subscriptions {openid, template_id, count? (one-time, default 1), long_term?}
  GET  /_sim/subscriptions?openid&template_id   remaining quota
  POST /_sim/pages {pages: [...]}               register mini-program pages (for `page`)
  POST /_sim/access-token/expire {appid?}       expire every current token of the app
  GET  /_sim/messages?touser&template_id        delivered subscribe messages
  GET  /_sim/calls                              call counts and error answers per endpoint
  POST /_sim/faults {endpoint, errcode? | http_status? | delay?, times?}   inject failures
  POST /_sim/faults {down?, latency_ms?, errors?}  the real-name conventions (see face_sim.py)
  POST /_sim/people, /_sim/advance, /_sim/face/perform, /_sim/face/auto   face verification

Seeded: demo user openid oDEMOcitizen0000000000000001 (unionid uDEMOcitizen0000000000000001,
phone 13800138000) with long-term subscription to tpl_application_progress; templates
tpl_application_progress (thing1 character_string2 phrase3 time4 thing5), tpl_appointment_reminder
(thing1 time2 character_string3 thing4), tpl_materials_required (thing1 thing2 date3).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from integrations.wechat import face_sim
from integrations.wechat.sim_state import SimState, WxError
from integrations.wechat.template_fields import FIELD_TYPES, field_type, invalid_fields

DEMO_OPENID = "oDEMOcitizen0000000000000001"
DEMO_UNIONID = "uDEMOcitizen0000000000000001"
DEMO_PHONE = "13800138000"
PAGES = (
    "pages/index/index",
    "pages/applications/list",
    "pages/applications/detail",
    "pages/appointments/detail",
    "pages/messages/index",
)
TEMPLATES = {
    "tpl_application_progress": ["thing1", "character_string2", "phrase3", "time4", "thing5"],
    "tpl_appointment_reminder": ["thing1", "time2", "character_string3", "thing4"],
    "tpl_materials_required": ["thing1", "thing2", "date3"],
}


def _seed(state: SimState) -> None:
    with state.lock:
        state.reset()
        state.pages.update(PAGES)
        for tid, keywords in TEMPLATES.items():
            state.add_template(appid=state.default_appid, template_id=tid, fields=_fields(keywords))
        state.add_user(appid=state.default_appid, openid=DEMO_OPENID, unionid=DEMO_UNIONID, phone=DEMO_PHONE)
        state.grant(DEMO_OPENID, "tpl_application_progress", count=0, long_term=True)


def _fields(raw: Any) -> dict[str, dict[str, Any]]:
    """Normalise a template's field list; ValueError when a type is unknown."""
    items = {k: {"type": field_type(k)} for k in raw} if isinstance(raw, list) else dict(raw)
    fields = {}
    for key, spec in items.items():
        spec = {"type": spec} if isinstance(spec, str) else dict(spec)
        if spec.get("type") not in FIELD_TYPES:
            raise ValueError(f"unknown field type for {key}")
        fields[key] = spec
    return fields


def _wx_error(errcode: int, errmsg: str) -> Response:
    return jsonify(
        {"errcode": errcode, "errmsg": f"{errmsg}, rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}"}
    )


def _json_body() -> dict[str, Any]:
    # WeChat parses the body as JSON whatever the Content-Type (wechatpy sends none).
    try:
        body = json.loads(request.get_data() or b"")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise WxError(47001, "data format error")
    return body


def create_simulator(config: Mapping[str, Any]) -> Flask:
    """Build the simulator app for the mini-program WECHAT_APPID / WECHAT_SECRET."""
    app = Flask("wechat_simulator")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    state = SimState(str(config["WECHAT_APPID"]), str(config["WECHAT_SECRET"]))
    _seed(state)
    app.extensions["wechat_sim"] = state
    face = app.extensions["wechat_face_sim"] = face_sim.FaceSim(state)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    def api(endpoint: str, method: str) -> Callable[[Callable[[], dict]], Callable[[], Response]]:
        def register(handler: Callable[[], dict]) -> Callable[[], Response]:
            def view() -> Response:
                with state.lock:
                    state.calls[endpoint] += 1
                response = answer()
                if response.status_code >= 500 or (response.is_json and response.get_json().get("errcode")):
                    with state.lock:
                        state.errors[endpoint] += 1
                return response

            def answer() -> Response:
                if request.method != method:
                    return _wx_error(43001 if method == "GET" else 43002, f"require {method} method")
                fault = state.take_fault(endpoint)
                if fault and fault.get("delay"):
                    time.sleep(float(fault["delay"]))
                if fault and fault.get("http_status"):
                    return Response("simulated failure", status=int(fault["http_status"]))
                if fault and fault.get("errcode") is not None:
                    return _wx_error(int(fault["errcode"]), "system error")
                try:
                    return face.before_call(endpoint) or jsonify(handler())
                except WxError as exc:
                    return _wx_error(exc.errcode, exc.errmsg)

            app.add_url_rule("/" + endpoint, endpoint.replace("/", "_"), view, methods=methods)
            return view

        return register

    @api("cgi-bin/token", "GET")
    def token() -> dict:
        args = request.args
        appid = state.check_app(args.get("appid"), args.get("secret"))
        if args.get("grant_type") != "client_credential":
            raise WxError(40002, "invalid grant_type")
        return state.basic_token(appid)

    @api("cgi-bin/stable_token", "POST")
    def stable_token() -> dict:
        body = _json_body()
        if body.get("grant_type") != "client_credential":
            raise WxError(40002, "invalid grant_type")
        appid = state.check_app(body.get("appid"), body.get("secret"))
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            raise WxError(47001, "data format error")
        return state.stable_token(appid, force)

    @api("sns/jscode2session", "GET")
    def jscode2session() -> dict:
        args = request.args
        appid = state.check_app(args.get("appid"), args.get("secret"))
        if args.get("grant_type") != "authorization_code":
            raise WxError(40002, "invalid grant_type")
        if not args.get("js_code"):
            raise WxError(41008, "missing code")
        return state.code2session(appid, args["js_code"])

    @api("wxa/business/getuserphonenumber", "POST")
    def phone_number() -> dict:
        appid = state.app_for_token(request.args.get("access_token"))
        body = _json_body()
        if not isinstance(body.get("code"), str) or not body["code"]:
            raise WxError(47001, "data format error")
        return {"errcode": 0, "errmsg": "ok", "phone_info": state.phone_number(appid, body["code"])}

    @api("cgi-bin/message/subscribe/send", "POST")
    def subscribe_send() -> dict:
        appid = state.app_for_token(request.args.get("access_token"))
        msgid = state.deliver(appid, _json_body(), invalid_fields)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    face_sim.register_api(api, face, _json_body)
    _register_control(app, state, face)
    face_sim.register_control(app, face)
    return app


def _register_control(app: Flask, state: SimState, face: face_sim.FaceSim) -> None:
    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def fail(status: int, message: str) -> tuple[Response, int]:
        return jsonify({"error": message}), status

    @app.post("/_sim/reset")
    def reset() -> Any:
        _seed(state)
        face.reset()
        return {"ok": True}

    @app.post("/_sim/apps")
    def add_app() -> Any:
        data = body()
        if not data.get("appid") or not data.get("secret"):
            return fail(400, "appid and secret are required")
        with state.lock:
            state.apps[str(data["appid"])] = str(data["secret"])
        return {"appid": data["appid"]}

    @app.post("/_sim/users")
    def add_user() -> Any:
        data = body()
        try:
            user = state.add_user(
                appid=data.get("appid") or state.default_appid, openid=data.get("openid"),
                unionid=data.get("unionid"), phone=data.get("phone"),
                country_code=str(data.get("country_code", "86")),
            )  # fmt: skip
        except KeyError:
            return fail(404, "unknown appid")
        return user.public(), 201

    @app.get("/_sim/users/<openid>")
    def get_user(openid: str) -> Any:
        with state.lock:
            user = state.users.get(openid)
            return user.public() if user else fail(404, "unknown openid")

    @app.post("/_sim/users/<openid>/<kind>")
    def mint(openid: str, kind: str) -> Any:
        if openid not in state.users:
            return fail(404, "unknown openid")
        if kind == "risky":
            with state.lock:
                state.users[openid].risky = bool(body().get("risky", True))
            return {"openid": openid, "risky": state.users[openid].risky}
        if kind not in ("login-code", "phone-code"):
            return fail(404, "unknown action")
        try:
            return {"code": state.mint_code(openid, phone=kind == "phone-code")}, 201
        except ValueError as exc:
            return fail(400, str(exc))

    @app.post("/_sim/templates")
    def add_template() -> Any:
        data = body()
        try:
            fields = _fields(data.get("fields") or [])
        except (ValueError, TypeError) as exc:
            return fail(400, str(exc))
        if not fields:
            return fail(400, "fields are required")
        appid = data.get("appid") or state.default_appid
        return state.add_template(appid=appid, template_id=data.get("template_id"), fields=fields), 201

    @app.route("/_sim/subscriptions", methods=["GET", "POST"])
    def subscriptions() -> Any:
        if request.method == "GET":
            return state.quota(request.args.get("openid", ""), request.args.get("template_id", ""))
        data = body()
        try:
            count = int(data.get("count", 0 if data.get("long_term") else 1))
            return state.grant(str(data.get("openid")), str(data.get("template_id")), count=count,
                               long_term=bool(data.get("long_term", False)))  # fmt: skip
        except KeyError:
            return fail(404, "unknown openid or template_id")
        except (TypeError, ValueError):
            return fail(400, "count must be an integer")

    @app.post("/_sim/pages")
    def add_pages() -> Any:
        with state.lock:
            state.pages.update(str(p) for p in body().get("pages") or [])
            return {"pages": sorted(state.pages)}

    @app.post("/_sim/access-token/expire")
    def expire_token() -> Any:
        return {"expired": state.expire_tokens(body().get("appid") or state.default_appid)}

    @app.get("/_sim/messages")
    def messages() -> Any:
        touser, tid = request.args.get("touser"), request.args.get("template_id")
        with state.lock:
            found = [m for m in state.messages if (not touser or m["touser"] == touser)
                     and (not tid or m["template_id"] == tid)]  # fmt: skip
        return {"messages": found}

    @app.get("/_sim/calls")
    def calls() -> Any:
        with state.lock:
            return {"counts": dict(state.calls), "errors": dict(state.errors)}

    @app.post("/_sim/faults")
    def add_fault() -> Any:
        data = body()
        if not data.get("endpoint") and data.keys() & face_sim.FAULT_KEYS:
            try:
                return face.set_faults(data), 201
            except (TypeError, ValueError):
                return fail(400, "latency_ms and errors must be integers")
        if not data.get("endpoint"):
            return fail(400, "endpoint is required")
        fault = {
            "endpoint": str(data["endpoint"]).lstrip("/"),
            "errcode": data.get("errcode"),
            "http_status": data.get("http_status"),
            "delay": data.get("delay"),
            "times": int(data.get("times", 1)),
        }
        with state.lock:
            state.faults = [f for f in state.faults if f["times"] > 0] + [fault]
        return fault, 201
