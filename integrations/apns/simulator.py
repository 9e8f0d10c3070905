"""APNs simulator: the provider API over HTTP/2 (cleartext, prior knowledge), served by hypercorn.

It checks what APNs checks and answers with APNs' status codes and `{"reason": ...}` bodies:
- HTTP/2 only (an HTTP/1.1 request gets 505);
- `POST /3/device/<token>` (405 MethodNotAllowed otherwise); the token is 64 hex characters
  (400 BadDeviceToken); a token marked unregistered gets 410 Unregistered with a timestamp;
- `authorization: bearer <JWT>`: header alg ES256 and a kid this simulator knows, claims iss =
  the team id and iat; verified with the team's public key (403 MissingProviderToken,
  InvalidProviderToken); iat older than an hour (403 ExpiredProviderToken);
- apns-topic = the app's bundle id (400 MissingTopic / 400 TopicDisallowed), apns-push-type
  (400 InvalidPushType), apns-priority 10, 5 or 1 (400 BadPriority), apns-expiration a number
  (400 BadExpirationDate), apns-id a UUID when given (400 BadMessageId);
- a JSON body with an `aps` object (400 PayloadEmpty / BadPayload... as PayloadEmpty), at most
  4096 bytes (413 PayloadTooLarge).
Success is 200 with the apns-id header echoed (or made).

Control API (HTTP/2 as well, JSON):
- GET  /_sim/notifications[?token=]  pushes accepted, oldest first
- GET  /_sim/calls                   counts by status and reason, distinct provider tokens seen
- POST /_sim/unregister {token}      later pushes to the token get 410 Unregistered
- POST /_sim/faults {status, reason, times, latency_ms}  the next `times` pushes fail so
- POST /_sim/reset
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import jwt
from flask import Flask, Response, jsonify, request

from integrations.apns.client import DEV_PUBLIC_KEY
from integrations.simulator_server import FaultQueue

PUSH_TYPES = {
    "alert",
    "background",
    "location",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
}
_TOKEN = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_PAYLOAD = 4096


class ApnsSimState:
    def __init__(self, team_id: str, key_id: str, public_key: str, topic: str) -> None:
        self.team_id, self.key_id, self.public_key, self.topic = team_id, key_id, public_key, topic
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.unregistered: dict[str, int] = {}
        self.calls: Counter = Counter()
        self.provider_tokens: set[str] = set()
        self.faults = FaultQueue(("status", "reason", "latency_ms"))
        self.verified: dict[str, dict[str, Any]] = {}


def _fail(status: int, reason: str, **extra: Any) -> Response:
    resp = jsonify({"reason": reason, **extra})
    resp.status_code = status
    return resp


def _check(state: ApnsSimState, token: str) -> Response | None:
    if request.environ.get("SERVER_PROTOCOL") != "HTTP/2":
        return _fail(505, "HTTP/2 is required")
    if not _TOKEN.match(token):
        return _fail(400, "BadDeviceToken")
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return _fail(403, "MissingProviderToken")
    value = auth[7:].strip()
    with state.lock:
        known = state.verified.get(value)
    if known is not None:  # APNs verifies a provider token once and remembers it
        claims = known
    else:
        failed = _verify(state, value)
        if isinstance(failed, Response):
            return failed
        claims = failed
        with state.lock:
            if len(state.verified) > 1000:
                state.verified.clear()
            state.verified[value] = claims
    if time.time() - claims["iat"] > 3600:
        return _fail(403, "ExpiredProviderToken")
    return _check_request(state, token)


def _verify(state: ApnsSimState, value: str) -> dict[str, Any] | Response:
    try:
        header = jwt.get_unverified_header(value)
        if header.get("alg") != "ES256" or header.get("kid") != state.key_id:
            return _fail(403, "InvalidProviderToken")
        claims = jwt.decode(value, state.public_key, algorithms=["ES256"], options={"verify_iat": False,
                            "require": ["iss", "iat"]})  # fmt: skip
    except jwt.PyJWTError:
        return _fail(403, "InvalidProviderToken")
    if claims.get("iss") != state.team_id:
        return _fail(403, "InvalidProviderToken")
    if not isinstance(claims.get("iat"), int) or claims["iat"] > time.time() + 60:
        return _fail(403, "InvalidProviderToken")
    with state.lock:
        state.provider_tokens.add(value)
    return claims


def _check_request(state: ApnsSimState, token: str) -> Response | None:
    topic = request.headers.get("apns-topic")
    if not topic:
        return _fail(400, "MissingTopic")
    if topic != state.topic:
        return _fail(400, "TopicDisallowed")
    if request.headers.get("apns-push-type", "alert") not in PUSH_TYPES:
        return _fail(400, "InvalidPushType")
    if request.headers.get("apns-priority", "10") not in ("10", "5", "1"):
        return _fail(400, "BadPriority")
    expiration = request.headers.get("apns-expiration", "0")
    if not (expiration.isascii() and expiration.isdigit()):
        return _fail(400, "BadExpirationDate")
    apns_id = request.headers.get("apns-id")
    if apns_id is not None:
        try:
            uuid.UUID(apns_id)
        except ValueError:
            return _fail(400, "BadMessageId")
    raw = request.get_data()
    if len(raw) > MAX_PAYLOAD:
        return _fail(413, "PayloadTooLarge")
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        return _fail(400, "PayloadEmpty")
    if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
        return _fail(400, "PayloadEmpty")
    with state.lock:
        if token.lower() in state.unregistered:
            return _fail(410, "Unregistered", timestamp=state.unregistered[token.lower()])
    return None


def create_simulator(config: Mapping[str, Any]) -> Flask:
    public_key = config.get("APNS_SIM_PUBLIC_KEY") or DEV_PUBLIC_KEY
    state = ApnsSimState(config["APNS_TEAM_ID"], config["APNS_KEY_ID"], public_key, config["APNS_TOPIC"])
    app = Flask("apns_simulator")
    app.extensions["apns_sim"] = state

    @app.route("/3/device/<token>", methods=["GET", "POST", "PUT", "DELETE"])
    def push(token: str) -> Response:
        if request.method != "POST":
            resp = _fail(405, "MethodNotAllowed")
        else:
            fault = state.faults.take()
            if fault and fault.get("latency_ms"):
                time.sleep(int(fault["latency_ms"]) / 1000)
            if fault and fault.get("status"):
                resp = _fail(int(fault["status"]), str(fault.get("reason") or "InternalServerError"))
            else:
                resp = _check(state, token) or _accept(state, token)
        with state.lock:
            state.calls[f"{resp.status_code}"] += 1
        return resp

    def _accept(state: ApnsSimState, token: str) -> Response:
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4()).upper()
        with state.lock:
            state.notifications.append({
                "token": token.lower(), "apns_id": apns_id, "payload": request.get_json(),
                "topic": request.headers.get("apns-topic"),
                "push_type": request.headers.get("apns-push-type"),
                "priority": request.headers.get("apns-priority"), "at": time.time(),
            })  # fmt: skip
        resp = Response(b"", status=200)  # one (empty) chunk: hypercorn starts a response on its first
        resp.headers["apns-id"] = apns_id
        return resp

    @app.get("/_sim/notifications")
    def notifications() -> Any:
        token = (request.args.get("token") or "").lower()
        with state.lock:
            return jsonify([n for n in state.notifications if not token or n["token"] == token])

    @app.get("/_sim/calls")
    def calls() -> Any:
        with state.lock:
            return {"by_status": dict(state.calls), "provider_tokens": len(state.provider_tokens)}

    @app.post("/_sim/unregister")
    def unregister() -> Any:
        token = str((request.get_json(silent=True) or {}).get("token") or "").lower()
        with state.lock:
            state.unregistered[token] = int(time.time() * 1000)
        return {"unregistered": token}

    @app.post("/_sim/faults")
    def faults() -> Any:
        return {"faults": state.faults.add(request.get_json(silent=True) or {})}

    @app.post("/_sim/reset")
    def reset() -> Any:
        with state.lock:
            state.reset()
        return {"reset": True}

    return app


class H2Server:
    """Serve a WSGI app over HTTP/2 (and HTTP/1.1) with hypercorn in a background thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import asyncio
        import socket

        from hypercorn.config import Config

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self._config = Config()
        self._config.bind = [f"{host}:{port}"]
        self._config.loglevel = "WARNING"
        self._config.accesslog = None
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._stop: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import asyncio

        from hypercorn.asyncio import serve

        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        self._loop.run_until_complete(
            serve(self._app, self._config, shutdown_trigger=self._stop.wait, mode="wsgi")
        )

    def start(self) -> H2Server:
        import socket

        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("APNs simulator did not start")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)


def serve(app: Any, host: str, port: int) -> None:
    """Serve over HTTP/2 in the foreground until interrupted."""
    server = H2Server(app, host, port).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def main() -> None:
    """Serve on APNS_BASE_URL's port (default 9107) with the current configuration."""
    from config import load_config

    cfg = vars(load_config())
    serve(create_simulator(cfg), "127.0.0.1", int(cfg["APNS_BASE_URL"].rsplit(":", 1)[1].split("/")[0]))


if __name__ == "__main__":
    main()
