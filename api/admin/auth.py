"""Operator login, logout and the logged-in operator."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from api.admin.schemas import (
    LoginResponseSchema,
    LoginSchema,
    MeResponseSchema,
    NewTotpSchema,
    PasswordChangedSchema,
    PasswordChangeSchema,
)
from api.admin.security import (
    BEARER_SECURITY,
    admin_policy,
    allowed_before_password_change,
    audit_admin_request,
    current_actor,
    current_operator,
    require_operator,
    reset_admin_context,
)
from api.auth import public
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.middleware import client_ip
from core.db import db
from domain.operators import credential_changes, lockout, sessions
from domain.operators import service as operators
from domain.operators.models import Operator
from domain.operators.scope import scope_of

blp = Blueprint("admin_auth", __name__, url_prefix="/admin/v1", description="管理员登录 / Operator login")
blp.before_request(require_operator)
# Registered once for the whole app so 404/405 under /admin/ are audited too.
blp.before_app_request(reset_admin_context)
blp.after_app_request(audit_admin_request)


def operator_body(operator: Operator) -> dict:
    """The JSON view of an operator (no credentials)."""
    return {
        "id": operator.id,
        "username": operator.username,
        "display_name": operator.display_name,
        "roles": list(operator.roles or ()),
        "hall_ids": list(operator.hall_ids or ()),
        "department_codes": list(operator.department_codes or ()),
        "scoped": scope_of(operator).scoped,
        "status": operator.status,
        "must_change_password": bool(operator.must_change_password),
        "locked": lockout.is_locked(operator),
        "locked_until": operator.locked_until if lockout.is_locked(operator) else None,
        "failed_attempts": operator.failed_attempts,
        "created_at": operator.created_at,
        "last_login_at": operator.last_login_at,
    }


@blp.route("/auth/login")
class Login(MethodView):
    @public
    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResponseSchema)
    def post(self, body: dict) -> dict:
        """Log in with username, password and the authenticator code.

        Wrong username, password or code all answer 401 `admin.login_failed`. After
        ADMIN_LOCKOUT_THRESHOLD failures from one address within ADMIN_LOCKOUT_SECONDS, the username
        is locked for that address (not elsewhere) until the window has passed: every attempt
        from it then answers 403 `admin.locked` with Retry-After.

        `must_change_password` true: the password is one an admin chose (a new account, a
        reset). The session works only for `POST /admin/v1/me/totp` (a TOTP secret the admin has
        not seen), `POST /admin/v1/me/password`, `GET /admin/v1/me` and logout until the password
        and the TOTP secret are changed; everything else is 403 `admin.password_change_required`.
        """
        svc = services()
        svc.ratelimiter.hit(
            "admin-login-ip", client_ip(), limit=current_app.config["LOGIN_PER_IP_PER_MINUTE"], window=60
        )
        result = operators.login(
            db.session(), encryptor=svc.encryptor, tokens=svc.tokens, policy=admin_policy(),
            actor=current_actor(), username=body["username"], password=body["password"],
            totp_code=body["totp_code"], ratelimiter=svc.ratelimiter,
        )  # fmt: skip
        g.admin_actor_id = result.operator.id
        return {
            "access_token": result.access_token,
            "token_type": "Bearer",
            "expires_in": result.expires_in,
            "idle_timeout": result.idle_timeout,
            "session_id": result.session_id,
            "must_change_password": bool(result.operator.must_change_password),
            "operator": operator_body(result.operator),
        }


@blp.route("/auth/logout")
class Logout(MethodView):
    @allowed_before_password_change
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def post(self) -> None:
        """End the current operator session; its token stops working at once."""
        op = current_operator()
        sessions.end_session(db.session(), operator_id=op.operator_id, session_id=op.session_id)


@blp.route("/me")
class Me(MethodView):
    @allowed_before_password_change
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, MeResponseSchema)
    def get(self) -> dict:
        """The operator of the token and its roles."""
        op = current_operator()
        return {
            "operator": operator_body(operators.get_operator(db.session(), op.operator_id)),
            "session_id": op.session_id,
        }


@blp.route("/me/password")
class MyPassword(MethodView):
    @allowed_before_password_change
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, PasswordChangedSchema)
    def post(self, body: dict) -> dict:
        """Change your own password, with your current password and the authenticator's code.

        A wrong password or code (or a code already used) is 403 `admin.reauth_failed` and
        counts towards the login lockout (403 `admin.locked` once locked); a new password
        against the rule is 422 `admin.password_weak`, one equal to the current password 422
        `admin.password_unchanged`. Your other sessions end; this one stays. It lifts
        `must_change_password` (a password an admin chose), so the other admin routes work again.

        While `must_change_password` is set the admin has also seen your TOTP secret: first get a
        new one (`POST /admin/v1/me/totp`) and give its current code as `new_totp_code`; the new
        secret then replaces the old one in the same change. Without a new secret: 409
        `admin.totp_enrolment_required`; with one asked for more than `ADMIN_TOTP_PENDING_TTL`
        seconds ago: 409 `admin.totp_enrolment_expired` (ask again); a wrong or missing `new_totp_code`: 422
        `admin.totp_code_invalid` (neither counts as a failed proof; nothing changes).
        """
        op = current_operator()
        svc = services()
        ended = credential_changes.change_own_password(
            db.session(), encryptor=svc.encryptor, policy=admin_policy(), actor=current_actor(),
            operator_id=op.operator_id, session_id=op.session_id, current_password=body["current_password"],
            totp_code=body["totp_code"], new_password=body["new_password"],
            new_totp_code=body.get("new_totp_code"), ratelimiter=svc.ratelimiter,
        )  # fmt: skip
        return {
            "operator": operator_body(operators.get_operator(db.session(), op.operator_id)),
            "sessions_ended": ended,
        }


@blp.route("/me/totp")
class MyNewTotp(MethodView):
    @allowed_before_password_change
    # A reset discards the secret and ends the session that got it; a replay outlives neither
    # the secret's own lifetime (a retry after it would hand back a secret already refused).
    @idempotent(per_session=True, ttl=lambda: current_app.config["ADMIN_TOTP_PENDING_TTL"])
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, NewTotpSchema)
    def post(self) -> dict:
        """Get a new TOTP secret to replace the one the admin who chose your password saw.

        Only while `must_change_password` is set (else 409 `admin.totp_enrolment_not_needed`).
        The secret and its otpauth:// URI appear only in this response (a retry with the same
        Idempotency-Key in the same session shows them again while the secret can be enrolled;
        after a credentials reset, which discards the pending secret and ends the session, the
        same key gets a new one); asking
        again replaces the pending one. It becomes your
        secret when `POST /admin/v1/me/password` changes the password with one of its codes as
        `new_totp_code` within `ADMIN_TOTP_PENDING_TTL` seconds (600); until then you log in with
        the old one.
        """
        done = credential_changes.request_new_totp(
            db.session(), encryptor=services().encryptor, actor=current_actor(),
            operator_id=current_operator().operator_id, session_id=current_operator().session_id,
        )  # fmt: skip
        return {"totp_secret": done.totp_secret, "totp_uri": done.totp_uri}
