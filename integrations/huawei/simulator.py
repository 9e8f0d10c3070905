"""Huawei Push Kit simulator: the OAuth token endpoint and messages:send, checked as Huawei does.

- `POST /oauth2/v3/token` (form): grant_type=client_credentials with the known client id and
  secret → {access_token, expires_in 3600, token_type "Bearer"}; otherwise HTTP 400
  {"error": 1101, "error_description": "invalid client"}.
- `POST /v1/<appId>/messages:send`: `Authorization: Bearer <token>` issued here and not expired
  (HTTP 401 {"code": "80200003"}), appId matching the client (80300002 no permission), a message
  with exactly one of token / topic / condition, token a list of 1-1000 (80100003 otherwise),
  body ≤ 4096 bytes (80300008). Tokens marked uninstalled: all → 80300007, some → 80100000 with
  {"success": n, "failure": m, "illegal_tokens": [...]} in msg. Success {"code": "80000000",
  "msg": "Success", "requestId": ...}.
Control: DELETE /_sim/tokens/<token> (app uninstalled), POST /_sim/expire (tokens expire),
GET /_sim/messages, POST /_sim/faults {status, code, times}, POST /_sim/reset.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from integrations.simulator_server import FaultQueue


def _answer(status: int, code: str, msg: str, **extra: Any) -> Response:
    resp = jsonify(
        {
            "code": code,
            "msg": msg,
            "requestId": f"{int(time.time() * 1000)}{secrets.randbelow(10**6):06d}",
            **extra,
        }
    )
    resp.status_code = status
    return resp


def create_simulator(config: Mapping[str, Any]) -> Flask:
    app = Flask("huawei_push_simulator")
    client_id, client_secret = str(config["HUAWEI_APP_ID"]), str(config["HUAWEI_APP_SECRET"])
    lock = threading.Lock()
    state: dict[str, Any] = {}
    faults = FaultQueue(("status", "code"))

    def reset() -> None:
        state.update(tokens={}, uninstalled=set(), messages=[], token_calls=0)
        faults.clear()

    reset()

    @app.post("/oauth2/v3/token")
    def token() -> Any:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return jsonify({"error": 1102, "error_description": "unsupported grant_type"}), 400
        if form.get("client_id") != client_id or form.get("client_secret") != client_secret:
            return jsonify({"error": 1101, "error_description": "invalid client"}), 400
        value = secrets.token_urlsafe(32)
        with lock:
            state["tokens"][value] = time.time() + 3600
            state["token_calls"] += 1
        return {"access_token": value, "expires_in": 3600, "token_type": "Bearer"}

    @app.post("/v1/<app_id>/messages:send")
    def send(app_id: str) -> Response:
        auth = request.headers.get("Authorization", "")
        with lock:
            expires = state["tokens"].get(auth.removeprefix("Bearer ").strip())
        if not auth.startswith("Bearer ") or expires is None or expires < time.time():
            return _answer(401, "80200003", "OAuth token expired")
        if app_id != client_id:
            return _answer(403, "80300002", "There is no permission to send a message to a specified device")
        fault = faults.take()
        if fault:
            return _answer(int(fault.get("status") or 500), str(fault.get("code") or "81000001"), "injected")
        raw = request.get_data()
        if len(raw) > 4096:
            return _answer(400, "80300008", "The message body size exceeds the default value")
        try:
            body = json.loads(raw)
            message = body["message"]
            targets = [k for k in ("token", "topic", "condition") if k in message]
            tokens = message.get("token")
            assert len(targets) == 1 and isinstance(tokens, list) and 0 < len(tokens) <= 1000
            assert isinstance(message.get("notification", {}), dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return _answer(400, "80100003", "Illegal payload")
        with lock:
            bad = [t for t in tokens if t in state["uninstalled"]]
            if len(bad) == len(tokens):
                return _answer(400, "80300007", "All the tokens are invalid")
            answer = (
                _answer(200, "80000000", "Success")
                if not bad
                else _answer(
                    200,
                    "80100000",
                    json.dumps(
                        {"success": len(tokens) - len(bad), "failure": len(bad), "illegal_tokens": bad}
                    ),
                )
            )
            state["messages"].append(
                {
                    "tokens": tokens,
                    "notification": message.get("notification"),
                    "data": message.get("data"),
                    "requestId": answer.get_json()["requestId"],
                    "at": time.time(),
                }
            )
        return answer

    @app.delete("/_sim/tokens/<token>")
    def uninstall(token: str) -> Any:
        with lock:
            state["uninstalled"].add(token)
        return {"uninstalled": token}

    @app.post("/_sim/expire")
    def expire() -> Any:
        with lock:
            state["tokens"] = {k: 0.0 for k in state["tokens"]}
        return {"expired": True}

    @app.get("/_sim/messages")
    def messages() -> Any:
        with lock:
            return jsonify({"messages": state["messages"], "token_calls": state["token_calls"]})

    @app.post("/_sim/faults")
    def add_fault() -> Any:
        return {"faults": faults.add(request.get_json(silent=True) or {})}

    @app.post("/_sim/reset")
    def do_reset() -> Any:
        with lock:
            reset()
        return {"reset": True}

    return app


def serve(app: Any, host: str, port: int) -> None:
    """Serve in the foreground with keep-alive connections, as the real gateway keeps them."""
    from integrations.simulator_server import serve_keepalive

    serve_keepalive(app, host, port)


def main() -> None:
    from config import load_config

    cfg = vars(load_config())
    serve(create_simulator(cfg), "127.0.0.1", int(cfg["HUAWEI_PUSH_BASE_URL"].rstrip("/").rsplit(":", 1)[1]))


if __name__ == "__main__":
    main()
