"""WSGI middleware for the province's stage-event callbacks when they are in order.

`POST /v1/platform/callbacks[/<profile>]` is machine traffic: the province posts every stage of
every case, again on every retry, in bursts at its peak hours. Going through Flask's request
context, the middleware hooks and flask-smorest cost as much CPU as the callback's own work
(signature, nonce, one statement), so a well-formed callback is answered here with what the Flask
view (api/v1/platform.py) answers: the same body, signed, the X-Request-ID, Cache-Control and
X-Content-Type-Options headers, and the same access log line.

Everything else goes to Flask, which stays the one place errors are rendered: a body that is not
JSON or too large, a profile not configured, an event that does not validate, a signature that
does not verify (nothing is recorded then, so Flask finds the same
fault), a replayed nonce, and a failure to store. The nonce is recorded in the statement that
keeps the event; when it is recorded but the case is unknown, this path says so in the WSGI
environ (`NONCE_RECORDED`, a key no client can set), so the view does not take the request for
a replay.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from api import json_body
from api.middleware import client_ip_for, request_id_for
from api.v1.platform import NONCE_RECORDED
from core.db import db
from domain.forwarding import events
from domain.forwarding.errors import BadEvent, UnknownCase
from integrations.province import signing

log = logging.getLogger("yiwang.access")

PREFIX = "/v1/platform/callbacks"
_HEADERS = {name: "HTTP_" + name.upper().replace("-", "_") for name in signing.HEADERS}


def _is_json(content_type: str) -> bool:
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


class CallbackFastPath:
    def __init__(self, app: Callable[..., Iterable[bytes]], flask_app: Any) -> None:
        self.app, self.flask_app = app, flask_app
        cfg = flask_app.config
        self.limit = int(cfg["MAX_JSON_BYTES"])
        self.hops = int(cfg["TRUSTED_PROXY_HOPS"])
        self.access_log = bool(cfg.get("ACCESS_LOG", True))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if not 0 < length <= self.limit or not _is_json(environ.get("CONTENT_TYPE", "")):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Flask can read it again
        taken = self._answer(environ, path, body)
        if taken is None:
            return self.app(environ, start_response)
        answer, credentials = taken
        out = json.dumps(answer, separators=(",", ":")).encode() + b"\n"
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(out))),
                ("X-Request-ID", request_id),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                *signing.sign_response(credentials, 200, out).items(),  # as the view's answer is
            ],
        )
        if self.access_log:
            ip = client_ip_for(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"), self.hops)
            log.info(
                "request",
                extra={
                    "request_id": request_id, "method": "POST", "path": path, "status": 200,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "ip": ip,
                    "account": None,
                },
            )  # fmt: skip
        return [out]

    def _answer(self, environ: dict[str, Any], path: str, body: bytes) -> tuple[dict[str, str], Any] | None:
        """The view's answer and the profile's credentials to sign it with, or None for Flask to
        handle the request."""
        name = path[len(PREFIX) + 1 :] or None
        with self.flask_app.app_context():
            deps = self.flask_app.extensions["yiwang"].forwarding
            profile = deps.profile_named(name)
            if profile is None:
                return None
            try:
                raw = events.validate(json_body.loads(body))
            except (ValueError, BadEvent):
                return None
            headers = {name: environ.get(key, "") for name, key in _HEADERS.items()}
            try:
                signing.verify_request(
                    profile.credentials, "POST", path, headers, body, now=time.time(), nonce_seen=None
                )  # fmt: skip
                outcome = events.store(db.session(), profile, raw, nonce=headers[signing.H_NONCE])
            except UnknownCase:  # the nonce is recorded: the view must not take this for a replay
                environ[NONCE_RECORDED] = True
                return None
            except Exception:  # a bad signature, a replay, the database away: the view answers
                db.session.rollback()
                return None
            finally:
                db.session.remove()
        return {"code": "0", "result": outcome}, profile.credentials
