"""Operator authentication, role checks and the audit row every admin request leaves.

Admin blueprints call `blp.before_request(require_operator)` (views opt out with @public) and
then `blp.before_request(role_guard(ROLE_...))` or decorate methods with `@require_role(...)`.
An operator whose password an admin chose (`must_change_password`) reaches only the views marked
@allowed_before_password_change (change it, get a TOTP secret the admin has not seen, read
oneself, log out); every other one is 403 `admin.password_change_required`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, g, request

from api.auth import BEARER_CHALLENGE, bearer_token, invalid_token_challenge, is_public_view
from api.deps import services
from api.middleware import client_ip
from api.view_attrs import view_attr
from core.audit import record
from core.db import db
from core.errors import AppError
from domain.operators.audit_log import Actor
from domain.operators.errors import AdminAuthRequired, PasswordChangeRequired, RoleRequired
from domain.operators.scope import Scope
from domain.operators.sessions import OperatorPolicy, OperatorPrincipal, authenticate_token

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)

ADMIN_PREFIX = "/admin/"
BEARER_SECURITY = [{"bearerAuth": []}]
_BEFORE_PASSWORD_CHANGE = "_yiwang_before_password_change"


def allowed_before_password_change(view: F) -> F:
    """Mark a view an operator who must change their password may still use (put it on top)."""
    setattr(view, _BEFORE_PASSWORD_CHANGE, True)
    return view


def admin_policy() -> OperatorPolicy:
    """Operator login and session settings of the current app."""
    return OperatorPolicy.from_config(current_app.config)


def reset_admin_context() -> None:
    """before_app_request hook: forget any operator of an earlier request sharing this app context."""
    g.operator = None
    g.admin_actor_id = None


def require_operator() -> None:
    """before_request hook for admin blueprints: a live operator session is required."""
    if request.method == "OPTIONS" or is_public_view():
        return
    token = bearer_token()
    if token is None:  # RFC 6750 3: a 401 names the scheme (as on /v1)
        raise AdminAuthRequired(headers={"WWW-Authenticate": BEARER_CHALLENGE})
    try:
        g.operator = authenticate_token(
            db.session(), tokens=services().tokens, policy=admin_policy(), access_token=token
        )
    except AppError as error:
        g.admin_actor_id = getattr(error, "operator_id", None)
        invalid_token_challenge(error)  # invalid, expired, ended: 401 with its challenge
        raise
    if g.operator.must_change_password and not view_attr(_BEFORE_PASSWORD_CHANGE):
        raise PasswordChangeRequired(details={"change_password": "/admin/v1/me/password"})


def current_operator() -> OperatorPrincipal:
    """The operator of this request (set by require_operator)."""
    operator = g.get("operator")
    if operator is None:
        raise AdminAuthRequired()
    return operator


def current_scope() -> Scope:
    """The halls and departments the current operator may act for (read with the session)."""
    return current_operator().scope


def current_actor() -> Actor:
    """The audit actor of this request: the operator when known, with IP and request id."""
    operator = g.get("operator")
    actor_id = operator.operator_id if operator else g.get("admin_actor_id")
    return Actor("operator", actor_id, client_ip(), g.get("request_id"))


def check_role(role: str) -> None:
    """Raise RoleRequired naming `role` unless the current operator holds it."""
    if not current_operator().has_role(role):
        raise RoleRequired(role=role)


def role_guard(role: str) -> Callable[[], None]:
    """A before_request hook demanding `role` on every non-public view of a blueprint."""

    def guard() -> None:
        if request.method == "OPTIONS" or is_public_view():
            return
        check_role(role)

    return guard


def require_role(role: str) -> Callable[[F], F]:
    """Decorate a view method that needs `role` (put it above @blp.arguments)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check_role(role)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    return "rejected" if status < 500 else "error"


def audit_admin_request(resp: Response) -> Response:
    """after_app_request hook: one audit row for every request under /admin/, whatever its outcome."""
    if not request.path.startswith(ADMIN_PREFIX):
        return resp
    # Nothing uncommitted survives the request anyway (teardown discards it); ending it here
    # also frees SQLite's write lock for the audit transaction below.
    db.session.rollback()
    actor = current_actor()
    audit_session = db.session.session_factory()
    try:
        record(
            audit_session,
            actor_type="operator",
            actor_id=actor.id,
            action="admin.request",
            target_type="endpoint",
            target_id=(request.endpoint or "")[:64] or None,
            outcome=_outcome(resp.status_code),
            ip=actor.ip,
            request_id=actor.request_id,
            # Query values may carry personal data: only their names are kept.
            details={
                "method": request.method,
                "path": request.path[:200],
                "status": resp.status_code,
                "query_keys": sorted(request.args.keys())[:20],
            },
        )
        audit_session.commit()
    except Exception:  # the response is already decided; never lose it
        audit_session.rollback()
        log.exception("admin request audit failed", extra={"request_id": actor.request_id})
    finally:
        audit_session.close()
    return resp
