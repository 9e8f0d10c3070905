"""Request plumbing: request id, client IP, JSON body checks, access log."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import BadRequest

from api.deps import services
from api.errors import HTTP_ERRORS, MALFORMED_JSON, error_response
from api.i18n import language
from api.json_body import without_bom
from api.view_attrs import view_attr
from core.db import db
from core.redis import get_redis
from domain.oauth import usage

log = logging.getLogger("yiwang.access")
_REQUEST_ID = re.compile(r"\A[A-Za-z0-9._:\-]{8,64}\Z")  # fits audit_events.request_id
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_NOT_FOUND = HTTP_ERRORS[404]


def request_id_for(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is well-formed, else a new one."""
    return incoming if incoming and _REQUEST_ID.match(incoming) else os.urandom(16).hex()


def client_ip_for(remote_addr: str | None, forwarded_for: str | None, hops: int) -> str | None:
    """The caller's IP: the address `hops` proxies back in X-Forwarded-For, else the peer's."""
    if hops:
        forwarded = [p.strip() for p in (forwarded_for or "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return remote_addr


def client_ip() -> str:
    """The caller's IP, trusting X-Forwarded-For only for the configured proxy hops."""
    return g.get("client_ip") or request.remote_addr or "unknown"


def _too_large(limit: int) -> Response:
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
    zh, en = f"请求内容过大（上限 {size}）", f"The request body is too large (limit {size})"
    return error_response(413, "request.too_large", en if language() == "en" else zh)


def _ledger_third_party(principal: Any, scope: str | None) -> None:
    """A third-party app read or changed the citizen's data: the citizen's ledger says so."""
    usage.record_use(
        services().ledger_lines, get_redis(), connect=db.autocommit, account_id=principal.account_id,
        client_id=principal.client_id, grant_id=principal.grant_id, scope=scope or "", method=request.method,
        path=request.path, **usage.ledger_fields(request.view_args),
    )  # fmt: skip


def _reads_body() -> bool:
    """Whether the view reads a JSON body: declared (flask-smorest's arguments, read by webargs,
    which refuses a malformed one itself) or by hand (api.json_body.read_by_hand)."""
    if view_attr("_yiwang_reads_body"):
        return True
    doc = view_attr("_apidoc") or {}
    parameters = (doc.get("arguments") or {}).get("parameters") or []
    return any(p.get("in") == "json" for p in parameters)


def refuse_malformed_body() -> Response | None:
    """A view that takes no body still refuses one that is not JSON, as a view that reads one
    does: 400, and the request is not acted on. An empty body (a client streaming an empty POST,
    chunked) is no body, as webargs reads it too. Runs after every before_request hook
    (factory.YiwangFlask.preprocess_request), so a caller without a valid token hears 401
    first, as from a view that reads its body. A body of only a UTF-8 byte-order mark is no body
    either (api/json_body.py drops one)."""
    if request.method not in _BODY_METHODS or request.endpoint is None:
        return None
    if request.endpoint in current_app.config.get("NON_JSON_ENDPOINTS", set()) or _reads_body():
        return None
    if not ((request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")):
        return None
    try:
        if without_bom(request.get_data()).strip():
            request.get_json()
    except BadRequest:
        code, zh, en = MALFORMED_JSON
        return error_response(400, code, en if language() == "en" else zh)
    return None


def register_middleware(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXY_HOPS"]
    max_json = app.config["MAX_JSON_BYTES"]

    config = app.config

    @app.before_request
    def _start() -> Response | None:
        # Per-request state must not survive into the next request, even when an outer app
        # context is kept (tests, CLI): reset it explicitly. `g` and `request` are context
        # proxies: resolved once here, this hook runs on every request.
        ctx_g = g._get_current_object()  # type: ignore[attr-defined]
        req = request._get_current_object()  # type: ignore[attr-defined]
        ctx_g.pop("principal", None)
        ctx_g.pop("oauth_scope", None)
        ctx_g.started = time.perf_counter()
        ctx_g.request_id = request_id_for(req.headers.get("X-Request-ID"))
        ctx_g.client_ip = client_ip_for(req.remote_addr, req.headers.get("X-Forwarded-For"), hops)
        if "\x00" in req.path:
            # No resource is named with a NUL byte, and PostgreSQL text cannot hold one.
            code, zh, en = _NOT_FOUND
            return error_response(404, code, en if language() == "en" else zh)
        if req.method not in _BODY_METHODS or request.routing_exception is not None:
            # A wrong path or method is answered as such (404, 405 with Allow), whatever the body.
            return None
        if request.endpoint not in app.config.get("NON_JSON_ENDPOINTS", set()):
            has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
            if has_body and not request.is_json:
                zh, en = "请以 application/json 格式提交", "Send the body as application/json"
                return error_response(415, "request.unsupported_media_type", en if language() == "en" else zh)
            limit = app.config["BODY_LIMITS"].get(request.endpoint, max_json)
            if (request.content_length or 0) > limit:
                return _too_large(limit)
            if has_body and request.content_length is None:
                # Chunked upload without a length: read at most the limit.
                data = request.stream.read(limit + 1)
                if len(data) > limit:
                    return _too_large(limit)
                request._cached_data = data  # type: ignore[attr-defined]
        return None

    @app.after_request
    def _finish(resp: Response) -> Response:
        ctx_g = g._get_current_object()  # type: ignore[attr-defined]
        headers = resp.headers
        headers["X-Request-ID"] = ctx_g.get("request_id", "")
        principal = ctx_g.get("principal")
        if principal is not None:  # for gunicorn's access line
            request.environ["yiwang.account"] = principal.account_id
            if principal.client_id is not None and resp.status_code < 400:
                _ledger_third_party(principal, ctx_g.get("oauth_scope"))
        if "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        if resp.status_code == 204:  # no content, so no media type of it (a client may parse by it)
            headers.pop("Content-Type", None)
        if config.get("ACCESS_LOG", True):
            elapsed = (time.perf_counter() - ctx_g.get("started", time.perf_counter())) * 1000
            log.info(
                "request",
                extra={
                    "request_id": ctx_g.get("request_id"),
                    "method": request.method,
                    "path": request.path,
                    "status": resp.status_code,
                    "ms": round(elapsed, 2),
                    "ip": client_ip(),
                    "account": getattr(principal, "account_id", None),
                },
            )
        return resp
