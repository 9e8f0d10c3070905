"""Sending pre-rendered JSON with an ETag: 304 on If-None-Match, gzip when the phone accepts it.

Two callers share these helpers so they answer byte-for-byte alike: the Flask views, and
`CatalogFastPath`, a WSGI layer that serves a catalog detail already rendered in this process
without the Flask request machinery (most catalog traffic is phones revalidating what they
hold).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, request

from api.middleware import request_id_for
from domain.catalog.read_model import CatalogReadModel, Rendered

_DETAIL = re.compile(r"\A/v1/services/([0-9A-Z]{31})\Z")


def matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        # A cache may hold the compressed representation ("<tag>:gzip"); same content either way.
        if tag.split(":", 1)[0] == etag:
            return True
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def rendered_headers(rendered: Rendered, *, gz: bool, max_age: int) -> dict[str, str]:
    return {
        "ETag": f'"{rendered.etag}:gzip"' if gz else f'"{rendered.etag}"',
        "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={max_age}",
        "Vary": "Accept-Encoding",
    }


def send_rendered(rendered: Rendered, *, max_age: int) -> Response:
    gz = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    headers = rendered_headers(rendered, gz=gz, max_age=max_age)
    inm = request.headers.get("If-None-Match")
    if inm and matches(inm, rendered.etag):
        response = Response(status=304, headers=headers)
    else:
        if gz:
            headers["Content-Encoding"] = "gzip"
        body = rendered.gzipped if gz else rendered.body
        response = Response(body, mimetype="application/json", headers=headers)
    response.precompressed = True  # type: ignore[attr-defined]  # flask-compress must not touch it
    return response


class CatalogFastPath:
    """WSGI middleware for `GET /v1/services/<code>` when this process already holds that detail
    rendered and its catalog snapshot is fresh: answers 200 or 304 directly, with the headers
    the Flask view sends (ETag, Cache-Control, Vary, X-Request-ID, X-Content-Type-Options).
    Anything else (unknown code, stale snapshot, other paths) goes to Flask unchanged."""

    def __init__(self, app: Callable[..., Iterable[bytes]], model: CatalogReadModel, max_age: int) -> None:
        self.app, self.model, self.max_age = app, model, max_age

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING"):
            found = _DETAIL.match(environ.get("PATH_INFO", ""))
            rendered = self.model.fresh_detail(found.group(1)) if found else None
            if rendered is not None:
                return self._send(rendered, environ, start_response)
        return self.app(environ, start_response)

    def _send(
        self, rendered: Rendered, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        gz = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        headers = rendered_headers(rendered, gz=gz, max_age=self.max_age)
        headers["X-Request-ID"] = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        headers["X-Content-Type-Options"] = "nosniff"
        inm = environ.get("HTTP_IF_NONE_MATCH")
        if inm and matches(inm, rendered.etag):
            start_response("304 NOT MODIFIED", list(headers.items()))
            return []
        body = rendered.gzipped if gz else rendered.body
        if gz:
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
        start_response("200 OK", list(headers.items()))
        return [body]
