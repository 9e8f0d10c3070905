"""Citizen authentication, attached per blueprint; views opt out with @public."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from api.deps import services
from core.errors import AppError
from domain.auth.sessions import Principal, authenticate

F = TypeVar("F", bound=Callable[..., Any])


class AuthRequired(AppError):
    status = 401
    code = "auth.required"
    message_zh = "请先登录"
    message_en = "Authentication is required"


def public(view: F) -> F:
    """Mark a view as reachable without a token."""
    view._yiwang_public = True  # type: ignore[attr-defined]
    return view


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_public_view() -> bool:
    """Whether the view of this request is marked @public (404/405 count as public)."""
    from flask import current_app

    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        return True  # 404/405 are answered by the router
    cls = getattr(view, "view_class", None)
    if cls is not None:
        method = getattr(cls, request.method.lower(), None)
        return bool(getattr(method, "_yiwang_public", False) or getattr(cls, "_yiwang_public", False))
    return bool(getattr(view, "_yiwang_public", False))


def require_citizen() -> None:
    """before_request hook for citizen blueprints."""
    if request.method == "OPTIONS" or is_public_view():
        return
    token = bearer_token()
    if token is None:
        raise AuthRequired()
    svc = services()
    g.principal = authenticate(
        tokens=svc.tokens,
        revocations=svc.revocations,
        audience=svc.citizen_policy.audience,
        access_token=token,
    )


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise AuthRequired()
    return principal


BEARER_SECURITY = [{"bearerAuth": []}]
