"""Sign in on a browser by scanning a QR code with the mini-program or app already signed in.

The browser asks for a request (bound to its own cookie record), shows its id as a QR code and
polls; the phone reads who is asking (the app's name and scopes), and approves or refuses. Only
the browser that made the request can turn an approval into a sign-in, and only once. Requests
live 5 minutes in Redis; losing Redis just means scanning again.
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from redis.exceptions import WatchError

from core.crypto import constant_time_equal, random_token, token_hash

TTL = 300
PENDING, APPROVED, DENIED, USED = "pending", "approved", "denied", "used"
SCHEME = "yiwang://oauth-login?r="


def _key(request_id: str) -> str:
    return f"oauth:qr:{token_hash(request_id)}"


def create(redis: Redis, *, client_id: str, client_name: str, scope: str, browser: str) -> str:
    request_id = random_token(24)
    body = {"status": PENDING, "client_id": client_id, "client_name": client_name, "scope": scope,
            "browser": token_hash(browser)}  # fmt: skip
    redis.set(_key(request_id), json.dumps(body), ex=TTL)
    return request_id


def get(redis: Redis, request_id: str) -> dict[str, Any] | None:
    if not request_id or len(request_id) > 64:
        return None
    data = redis.get(_key(request_id))
    return json.loads(data) if data else None


def decide(redis: Redis, request_id: str, *, account_id: str, approve: bool) -> bool:
    """The phone's answer; False if the request is gone or already answered."""
    key = _key(request_id)
    with redis.pipeline() as pipe:
        pipe.watch(key)
        data = pipe.get(key)
        if not data:
            return False
        body = json.loads(data)
        if body["status"] != PENDING:
            return False
        body.update(status=APPROVED if approve else DENIED, account_id=account_id if approve else None)
        ttl = max(1, pipe.ttl(key))
        pipe.multi()
        pipe.set(key, json.dumps(body), ex=ttl)
        try:
            pipe.execute()
        except WatchError:  # a concurrent answer won
            return False
    return True


def take(redis: Redis, request_id: str, *, browser: str) -> tuple[str, str | None]:
    """(status, account id) for the browser that made the request; an approval is taken once."""
    body = get(redis, request_id)
    if body is None:
        return "expired", None
    if not constant_time_equal(body["browser"], token_hash(browser)):
        return "expired", None
    if body["status"] != APPROVED:
        return body["status"], None
    if redis.delete(_key(request_id)) != 1:  # a concurrent poll took it
        return USED, None
    return APPROVED, body["account_id"]
