"""@idempotent: a write a phone may retry replays its first response for the same key."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, g, make_response, request

from api.deps import services
from core.idempotency import IdempotencyKeyRequired, StoredResponse

HEADER = "Idempotency-Key"


def idempotent(
    view: Callable[..., Any] | None = None,
    *,
    ttl: int | None = None,
    keep_accepted: bool = True,
    required: bool = False,
) -> Any:
    """Use on MethodView methods (`@idempotent` or `@idempotent(ttl=300)`).

    Without the header the request runs as usual. Authenticated calls are scoped to the
    account; public ones (logins, refresh) to the request body itself, because a phone that
    lost a response often retries from another network and so another IP. `ttl` shortens how
    long the first response is replayed (token endpoints: minutes, not a day).
    `keep_accepted=False` stores no 202: for views whose 202 means "ask again later" (a
    verification still pending at the provider), a retry must ask again, not replay.
    `required=True` refuses a request without the header (428): writes that must never happen
    twice, such as submitting an application.
    """
    if view is None:
        return lambda v: _wrap(v, ttl, keep_accepted, required)
    return _wrap(view, ttl, keep_accepted, required)


def _wrap(
    view: Callable[..., Any], ttl: int | None, keep_accepted: bool, required: bool
) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            if required:
                raise IdempotencyKeyRequired()
            return view(*args, **kwargs)
        store = services().idempotency
        store.validate_key(key)
        principal = g.get("principal")
        # Keyed: bodies hold ID numbers and phones, and the fingerprint is stored in Redis.
        fingerprint = services().hasher.hash_bytes(request.get_data() or b"", purpose="idempotency")
        # Public: only a client that sends the same body (the same credential) can replay.
        who = principal.account_id if principal else f"body:{fingerprint}"
        scope = f"{who}|{request.method}|{request.path}"
        stored = store.begin(scope, key, fingerprint)
        if stored is not None:
            resp = Response(stored.body, status=stored.status, content_type=stored.content_type)
            resp.headers["Idempotent-Replayed"] = "true"
            return resp
        try:
            resp = make_response(view(*args, **kwargs))
        except Exception:
            # Errors raised before a response exists leave nothing stored: the retry runs again.
            store.abandon(scope, key)
            raise
        if resp.status_code < 500 and (keep_accepted or resp.status_code != 202):
            store.complete(
                scope, key, fingerprint,
                StoredResponse(resp.status_code, resp.get_data(), resp.content_type or "application/json"),
                ttl=ttl,
            )  # fmt: skip
        else:
            store.abandon(scope, key)
        return resp

    wrapper._yiwang_idempotent = True  # type: ignore[attr-defined]
    return wrapper
