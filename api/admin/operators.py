"""Operator accounts (role admin): create, list, change roles or status, unlock, reset credentials."""

from __future__ import annotations

from flask.views import MethodView

from api.admin.auth import operator_body
from api.admin.schemas import (
    CredentialsResetDoneSchema,
    CredentialsResetSchema,
    OperatorCreatedSchema,
    OperatorCreateSchema,
    OperatorSchema,
    OperatorUpdateSchema,
)
from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from core.db import db
from domain.operators import credential_changes
from domain.operators import service as operators
from domain.operators.models import ROLE_ADMIN

blp = Blueprint(
    "admin_operators", __name__, url_prefix="/admin/v1/operators", description="管理员账号 / Operators"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_ADMIN))


@blp.route("")
class Operators(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, OperatorSchema(many=True))
    def get(self) -> list[dict]:
        """Every operator account, by username."""
        return [operator_body(o) for o in operators.list_operators(db.session())]

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(OperatorCreateSchema)
    @blp.response(201, OperatorCreatedSchema)
    def post(self, body: dict) -> dict:
        """Create an operator; the TOTP secret and its otpauth:// URI appear only in this response.

        `hall_ids` and `department_codes` tie the operator to halls (check-in and in-person checks
        only there) and departments (only their complaints and rectification tasks); an unknown
        one is 422 `admin.scope_unknown` naming it, nothing created. Admins are never restricted.
        You chose the password and saw the secret, so the new operator must replace both on first
        login (`must_change_password`; 403 `admin.password_change_required` on other routes until then).
        """
        created = operators.create_operator(
            db.session(), encryptor=services().encryptor, actor=current_actor(),
            username=body["username"], display_name=body["display_name"],
            password=body["password"], roles=body["roles"], hall_ids=body.get("hall_ids"),
            department_codes=body.get("department_codes"), must_change_password=True,
        )  # fmt: skip
        return {
            "operator": operator_body(created.operator),
            "totp_secret": created.totp_secret,
            "totp_uri": created.totp_uri,
        }


@blp.route("/<string:operator_id>")
class OperatorItem(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, OperatorSchema)
    def get(self, operator_id: str) -> dict:
        """One operator."""
        return operator_body(operators.get_operator(db.session(), operator_id))

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(OperatorUpdateSchema)
    @blp.response(200, OperatorSchema)
    def patch(self, body: dict, operator_id: str) -> dict:
        """Change roles, status, halls, departments and/or ask for a password change; disabling ends
        the operator's sessions at once.

        `hall_ids` / `department_codes` replace the assigned halls / departments (`[]`: no
        restriction) from the operator's next request; an unknown one is 422
        `admin.scope_unknown`, nothing changed. `must_change_password: true` (a suspected leak):
        from their next request the operator may only replace their password and TOTP secret
        (`POST /admin/v1/me/totp`, then `/admin/v1/me/password`), as after a reset, but keeps the
        password you do not know; `false` is 422 (only their own change clears it). Audited as
        `operator.update` with each change.
        """
        operator = operators.update_operator(
            db.session(), actor=current_actor(), operator_id=operator_id,
            roles=body.get("roles"), status=body.get("status"), hall_ids=body.get("hall_ids"),
            department_codes=body.get("department_codes"),
            must_change_password=body.get("must_change_password"),
        )  # fmt: skip
        return operator_body(operator)


@blp.route("/<string:operator_id>/unlock")
class OperatorUnlock(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, OperatorSchema)
    def post(self, operator_id: str) -> dict:
        """Lift a lockout after failed logins and reset the failure counter."""
        unlocked = operators.unlock(
            db.session(), actor=current_actor(), operator_id=operator_id, ratelimiter=services().ratelimiter
        )
        return operator_body(unlocked)


@blp.route("/<string:operator_id>/reset-credentials")
class OperatorCredentialsReset(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(CredentialsResetSchema)
    @blp.response(200, CredentialsResetDoneSchema)
    def post(self, body: dict, operator_id: str) -> dict:
        """Reset another operator's password and TOTP (forgotten password, lost phone).

        The new TOTP secret and its otpauth:// URI appear only in this response (a retry with
        the same Idempotency-Key shows them again); every session of that operator ends and any
        lockout is lifted. Your own credentials: `POST /admin/v1/me/password` (409
        `admin.reset_self` here). A password against the rule is 422 `admin.password_weak`.
        You know the new password and TOTP secret, so the operator must replace both after logging
        in (`must_change_password`; 403 `admin.password_change_required` elsewhere until then).
        """
        done = credential_changes.reset_credentials(
            db.session(), encryptor=services().encryptor, actor=current_actor(), operator_id=operator_id,
            new_password=body["new_password"], ratelimiter=services().ratelimiter,
        )  # fmt: skip
        return {
            "operator": operator_body(done.operator),
            "totp_secret": done.totp_secret,
            "totp_uri": done.totp_uri,
            "sessions_ended": done.sessions_ended,
        }
