"""@idempotent: a write a phone may retry replays its first response for the same key."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, g, make_response, request

from api.deps import services
from api.middleware import client_ip
from core.idempotency import StoredResponse

HEADER = "Idempotency-Key"


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Use on MethodView methods; without the header the request runs as usual."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        store = services().idempotency
        store.validate_key(key)
        principal = g.get("principal")
        who = principal.account_id if principal else f"ip:{client_ip()}"
        scope = f"{who}|{request.method}|{request.path}"
        fingerprint = hashlib.sha256(request.get_data() or b"").hexdigest()
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
        if resp.status_code < 500:
            store.complete(
                scope, key, fingerprint,
                StoredResponse(resp.status_code, resp.get_data(), resp.content_type or "application/json"),
            )  # fmt: skip
        else:
            store.abandon(scope, key)
        return resp

    wrapper._yiwang_idempotent = True  # type: ignore[attr-defined]
    return wrapper
