"""The browser's sign-in on the OAuth pages: an HttpOnly cookie naming a short record in Redis.

The API itself is cookie-free; only /oauth pages use this. The record holds a CSRF token for the
page's forms and, once the citizen has signed in (SMS code, or approving a QR code on a phone
already signed in), the account. It lasts 15 minutes: long enough to read a consent screen
slowly, short enough that a shared phone does not stay signed in.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request

from core.crypto import constant_time_equal, random_token, token_hash
from core.redis import get_redis

COOKIE = "yw_oauth"
TTL = 900


def _key(raw: str) -> str:
    return f"oauth:browser:{token_hash(raw)}"


def load() -> tuple[str | None, dict[str, Any]]:
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 100:
        return None, {}
    data = get_redis().get(_key(raw))
    return (raw, json.loads(data)) if data else (None, {})


def ensure() -> tuple[str, dict[str, Any], bool]:
    """The browser's record, made if missing; the flag says whether a cookie must be set."""
    raw, data = load()
    if raw is not None:
        return raw, data, False
    raw = random_token(24)
    data = {"csrf": random_token(16)}
    save(raw, data)
    return raw, data, True


def save(raw: str, data: dict[str, Any]) -> None:
    get_redis().set(_key(raw), json.dumps(data), ex=TTL)


def set_cookie(resp: Response, raw: str) -> None:
    secure = current_app.config["PUBLIC_BASE_URL"].startswith("https://")
    resp.set_cookie(COOKIE, raw, max_age=TTL, httponly=True, secure=secure, samesite="Lax", path="/oauth")


def clear(resp: Response) -> None:
    raw, _ = load()
    if raw:
        get_redis().delete(_key(raw))
    resp.delete_cookie(COOKIE, path="/oauth")


def csrf_ok(data: dict[str, Any], sent: str | None) -> bool:
    return bool(sent) and bool(data.get("csrf")) and constant_time_equal(sent or "", data["csrf"])


def sign_in(raw: str, data: dict[str, Any], account_id: str) -> str:
    """Bind the browser to an account under a new cookie value and CSRF token, so a value
    planted before the login is worth nothing after it. Returns the new cookie value."""
    get_redis().delete(_key(raw))
    fresh = random_token(24)
    save(fresh, {**data, "account_id": account_id, "csrf": random_token(16)})
    return fresh
