"""JPush v3 simulator: `POST /v3/push` checked as JPush checks it.

- HTTP Basic with a known appKey:masterSecret (401, code 1004 auth failed);
- a JSON body with platform ("all" or a list of android/ios/winphone), audience ("all" or an
  object with registration_id: a non-empty list of ≤1000), and notification or message
  (400, code 1003 parameter invalid; 1001 only POST);
- registration ids the simulator knows (POST /_sim/devices) or any id when open; an unknown or
  removed one → 400 code 1011 "cannot find user by this audience";
- options.sendno echoed; success {sendno, msg_id}.
Control: POST /_sim/devices {registration_id} (register) | DELETE /_sim/devices/<id> (uninstall),
GET /_sim/pushes, POST /_sim/faults {status, code, times}, POST /_sim/reset.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from integrations.simulator_server import FaultQueue

PLATFORMS = {"android", "ios", "winphone", "quickapp", "hmos"}


def _error(status: int, code: int, message: str) -> Response:
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def create_simulator(config: Mapping[str, Any]) -> Flask:
    app = Flask("jpush_simulator")
    expected = base64.b64encode(
        f"{config['JPUSH_APP_KEY']}:{config['JPUSH_MASTER_SECRET']}".encode()
    ).decode()
    lock = threading.Lock()
    state: dict[str, Any] = {}
    faults = FaultQueue(("status", "code"))

    def reset() -> None:
        state.update(pushes=[], removed=set(), msg_id=10**15)
        faults.clear()

    reset()

    @app.route("/v3/push", methods=["GET", "POST"])
    def push() -> Response:
        if request.method != "POST":
            return _error(405, 1001, "only POST is supported")
        if request.headers.get("Authorization", "") != f"Basic {expected}":
            return _error(401, 1004, "Authen failed")
        fault = faults.take()
        if fault:
            return _error(int(fault.get("status") or 500), int(fault.get("code") or 1030), "injected")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, 1003, "Payload is not valid JSON")
        platform = body.get("platform")
        if not (
            platform == "all" or (isinstance(platform, list) and platform and set(platform) <= PLATFORMS)
        ):
            return _error(400, 1003, "platform is invalid")
        audience = body.get("audience")
        ids = audience.get("registration_id") if isinstance(audience, dict) else None
        if audience != "all" and not (isinstance(ids, list) and 0 < len(ids) <= 1000):
            return _error(400, 1003, "audience is invalid")
        if not isinstance(body.get("notification"), dict) and not isinstance(body.get("message"), dict):
            return _error(400, 1003, "notification or message is required")
        with lock:
            if ids and all(i in state["removed"] for i in ids):
                return _error(400, 1011, "cannot find user by this audience")
            state["msg_id"] += 1
            msg_id = str(state["msg_id"])
            state["pushes"].append(
                {
                    "registration_ids": ids,
                    "notification": body.get("notification"),
                    "options": body.get("options"),
                    "msg_id": msg_id,
                    "at": time.time(),
                }
            )
        sendno = (body.get("options") or {}).get("sendno", 0)
        return jsonify({"sendno": str(sendno), "msg_id": msg_id})

    @app.post("/_sim/devices")
    def add_device() -> Any:
        rid = str((request.get_json(silent=True) or {}).get("registration_id") or "")
        with lock:
            state["removed"].discard(rid)
        return {"registration_id": rid}

    @app.delete("/_sim/devices/<rid>")
    def remove_device(rid: str) -> Any:
        with lock:
            state["removed"].add(rid)
        return {"removed": rid}

    @app.get("/_sim/pushes")
    def pushes() -> Any:
        with lock:
            return jsonify(state["pushes"])

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
    serve(create_simulator(cfg), "127.0.0.1", int(cfg["JPUSH_BASE_URL"].rstrip("/").rsplit(":", 1)[1]))


if __name__ == "__main__":
    main()
