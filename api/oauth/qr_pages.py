"""Scan-to-sign-in on the OAuth pages: the browser shows a QR code, the phone approves."""

from __future__ import annotations

import segno
from flask import Response, jsonify

from api.oauth import browser
from api.oauth.pages import authorize_url, form_context, page
from api.oauth.views import bp
from core.redis import get_redis
from domain.oauth import qr_login
from domain.oauth import scopes as scope_catalog


@bp.post("/login/qr")
def qr_start() -> Response:
    ctx = form_context()
    if isinstance(ctx, Response):
        return ctx
    raw, data, params, client = ctx
    request_id = qr_login.create(
        get_redis(), client_id=client.id, client_name=client.name,
        scope=scope_catalog.join(scope_catalog.parse(params.get("scope"))), browser=raw,
    )  # fmt: skip
    svg = segno.make(qr_login.SCHEME + request_id, error="m").svg_inline(scale=5, border=2)
    return page("qr.html", client=client, params=params, csrf=data["csrf"], svg=svg, request_id=request_id,
                next=authorize_url(params))  # fmt: skip


@bp.get("/login/qr/<string:request_id>")
def qr_poll(request_id: str) -> Response:
    """The browser's poll: pending, approved (now signed in), denied or expired."""
    raw, data = browser.load()
    if raw is None:
        return jsonify({"status": "expired"})
    status, account_id = qr_login.take(get_redis(), request_id, browser=raw)
    resp = jsonify({"status": status})
    resp.headers["Cache-Control"] = "no-store"
    if status == qr_login.APPROVED and account_id:
        browser.set_cookie(resp, browser.sign_in(raw, data, account_id))
    return resp
