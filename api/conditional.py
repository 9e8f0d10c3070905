"""Sending pre-rendered JSON with an ETag: 304 on If-None-Match, gzip when the phone accepts it."""

from __future__ import annotations

from flask import Response, request

from domain.catalog.read_model import Rendered


def _matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        # A cache may hold the compressed representation ("<tag>:gzip"); same content either way.
        if tag.split(":", 1)[0] == etag:
            return True
    return False


def _accepts_gzip() -> bool:
    for part in request.headers.get("Accept-Encoding", "").lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def send_rendered(rendered: Rendered, *, max_age: int) -> Response:
    gz = _accepts_gzip()
    etag = f'"{rendered.etag}:gzip"' if gz else f'"{rendered.etag}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={max_age}",
        "Vary": "Accept-Encoding",
    }
    inm = request.headers.get("If-None-Match")
    if inm and _matches(inm, rendered.etag):
        response = Response(status=304, headers=headers)
    else:
        if gz:
            headers["Content-Encoding"] = "gzip"
        body = rendered.gzipped if gz else rendered.body
        response = Response(body, mimetype="application/json", headers=headers)
    response.precompressed = True  # type: ignore[attr-defined]  # flask-compress must not touch it
    return response
