"""Citizen authentication, attached per blueprint; views opt out with @public."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from api.deps import services
from api.idempotency import early_claim
from api.view_attrs import view_attr
from core.errors import AppError
from domain.accounts.profile_cache import ProfileCache
from domain.auth.sessions import Principal, authenticate
from domain.oauth import usage
from domain.oauth.errors import InsufficientScope, ScopeNotAllowed
from domain.oauth.scopes import SCOPES

F = TypeVar("F", bound=Callable[..., Any])


# RFC 6750 §3: a 401 of bearer authentication names the scheme, and, when a token was sent but
# is not accepted (malformed, forged, expired, its session or grant ended), `invalid_token`.
# The 403 of a missing scope carries `insufficient_scope` the same way (`_check_scope`).
BEARER_CHALLENGE = "Bearer"
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


class AuthRequired(AppError):
    """No bearer token: 401 with `WWW-Authenticate: Bearer`."""

    status = 401
    code = "auth.required"
    message_zh = "请先登录"
    message_en = "Authentication is required"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.headers.setdefault("WWW-Authenticate", BEARER_CHALLENGE)


def invalid_token_challenge(error: AppError) -> AppError:
    """`error` refusing a bearer token that was sent, with RFC 6750's challenge when it is a 401
    (its body and code unchanged)."""
    if error.status == 401:
        error.headers.setdefault("WWW-Authenticate", INVALID_TOKEN_CHALLENGE)
    return error


def challenge_unauthorised(error: AppError) -> AppError:
    """Any 401 of a bearer-protected view carries RFC 6750's challenge, whatever raised it (a
    session ended while the view ran, say): `invalid_token` when a token was sent."""
    if error.status == 401 and "WWW-Authenticate" not in error.headers and not is_public_view():
        error.headers["WWW-Authenticate"] = INVALID_TOKEN_CHALLENGE if bearer_token() else BEARER_CHALLENGE
    return error


def public(view: F) -> F:
    """Mark a view as reachable without a token."""
    view._yiwang_public = True  # type: ignore[attr-defined]
    return view


def scope(name: str) -> Callable[[F], F]:
    """Open a view to third-party apps holding OAuth scope `name` (views without it refuse them)."""

    def mark(view: F) -> F:
        view._yiwang_scope = name  # type: ignore[attr-defined]
        return view

    return mark


def reads_cached(kind: str | Callable[[str], str]) -> Callable[[F], F]:
    """The view reads a cached view (domain.accounts.profile_cache): the account's `kind` view,
    or the key `kind(account_id)` names (it may read the request). It is fetched in the same
    Redis round trip as the token's revocation check."""
    key = kind if callable(kind) else (lambda account_id: ProfileCache.key(account_id, kind))

    def mark(view: F) -> F:
        view._yiwang_reads = key  # type: ignore[attr-defined]
        return view

    return mark


def cached_views() -> ProfileCache:
    """The per-account view cache, holding what this request's token check already read."""
    principal = g.get("principal")
    cache: ProfileCache = services().profiles
    return cache.with_values(principal.fetched) if principal is not None and principal.fetched else cache


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_public_view() -> bool:
    """Whether the view of this request is marked @public (404/405 count as public)."""
    from flask import current_app

    if current_app.view_functions.get(request.endpoint or "") is None:
        return True  # 404/405 are answered by the router
    return bool(view_attr("_yiwang_public"))


def _check_scope(principal: Principal) -> str:
    """The scope this view needs, once the third-party token is known to hold it (views that
    name no scope are closed to apps)."""
    needed = view_attr("_yiwang_scope")
    if needed is None:
        raise ScopeNotAllowed()
    if needed not in principal.scopes:
        title = SCOPES[needed].title_zh if needed in SCOPES else needed
        raise InsufficientScope(
            scope=needed, scope_title=title, details={"required_scope": needed},
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )  # fmt: skip
    return str(needed)


def require_citizen() -> None:
    """before_request hook for citizen blueprints."""
    if request.method == "OPTIONS" or is_public_view():
        return
    token = bearer_token()
    if token is None:
        raise AuthRequired()
    svc = services()
    key = view_attr("_yiwang_reads")
    try:
        g.principal = principal = authenticate(
            tokens=svc.tokens,
            revocations=svc.revocations,
            audience=svc.citizen_policy.audience,
            access_token=token,
            read=(lambda account_id: [key(account_id)]) if key else None,
            alongside=early_claim,
        )
    except AppError as error:  # invalid, expired, revoked: 401 with its challenge
        invalid_token_challenge(error)
        raise
    if principal.third_party:
        g.oauth_scope = _check_scope(principal)
        usage.ensure_recordable(svc.ledger_lines)  # no access the citizen's ledger could not show


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise AuthRequired()
    return principal


BEARER_SECURITY = [{"bearerAuth": []}]
