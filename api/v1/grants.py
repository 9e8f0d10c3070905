"""The citizen's control over convenience apps: grants, and approving a sign-in by QR code."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields

from api.auth import BEARER_SECURITY, current_principal, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.i18n import language
from api.schemas import StrictSchema
from core.db import db
from core.errors import NotFound
from core.redis import get_redis
from domain.oauth import grants, qr_login
from domain.oauth import scopes as scope_catalog

blp = Blueprint("grants", __name__, url_prefix="/v1/me/grants", description="第三方应用授权 / App grants")
blp.before_request(require_citizen)
login_blp = Blueprint(
    "oauth_login_requests", __name__, url_prefix="/v1/oauth-login-requests",
    description="扫码登录第三方授权页 / Approve a browser sign-in",
)  # fmt: skip
login_blp.before_request(require_citizen)
BLUEPRINTS = [blp, login_blp]


class ScopeSchema(StrictSchema):
    scope = fields.String(required=True)
    title = fields.String(required=True)
    reveals = fields.String(required=True)
    sensitive = fields.Boolean(required=True)
    min_level = fields.String(required=True)


class GrantClientSchema(StrictSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    contact = fields.String(required=True)


class GrantSchema(StrictSchema):
    id = fields.String(required=True)
    client = fields.Nested(GrantClientSchema, required=True)
    scopes = fields.List(fields.Nested(ScopeSchema), required=True)
    granted_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True)


class LoginRequestSchema(StrictSchema):
    status = fields.String(required=True)
    client_name = fields.String(required=True)
    scopes = fields.List(fields.Nested(ScopeSchema), required=True)


@blp.route("")
class Grants(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, GrantSchema(many=True))
    def get(self) -> list[dict]:
        """The apps the citizen has authorised: what each may see or do, since when, last used."""
        p = current_principal()
        return [
            {
                "id": g.id,
                "client": {"id": c.id, "name": c.name, "contact": c.contact},
                "scopes": scope_catalog.describe(scope_catalog.parse(g.scopes), language()),
                "granted_at": g.granted_at,
                "expires_at": g.expires_at,
                "last_used_at": g.last_used_at,
            }  # fmt: skip
            for g, c in grants.list_for(db.session(), p.account_id)
        ]


@blp.route("/<string:grant_id>")
class OneGrant(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def delete(self, grant_id: str) -> None:
        """Withdraw a grant: every token the app holds from it stops working at once."""
        grants.revoke(db.session(), revocations=services().revocations,
                      account_id=current_principal().account_id, grant_id=grant_id)  # fmt: skip


class LoginRequestNotFound(NotFound):
    code = "oauth.login_request_not_found"
    message_zh = "二维码已失效，请在电脑或其他应用上刷新后重新扫码"
    message_en = "The QR code has expired; refresh it and scan again"


def _request_body(request_id: str) -> dict:
    body = qr_login.get(get_redis(), request_id)
    if body is None:
        raise LoginRequestNotFound()
    names = [s for s in scope_catalog.parse(body["scope"]) if s in scope_catalog.SCOPES]
    return {"status": body["status"], "client_name": body["client_name"],
            "scopes": scope_catalog.describe(names, language())}  # fmt: skip


@login_blp.route("/<string:request_id>")
class LoginRequest(MethodView):
    @login_blp.doc(security=BEARER_SECURITY)
    @login_blp.response(200, LoginRequestSchema)
    def get(self, request_id: str) -> dict:
        """What the phone shows after scanning: which app is asking, for what."""
        return _request_body(request_id)


def _decide(request_id: str, approve: bool) -> dict:
    _request_body(request_id)
    if not qr_login.decide(
        get_redis(), request_id, account_id=current_principal().account_id, approve=approve
    ):
        raise LoginRequestNotFound()
    return _request_body(request_id)


@login_blp.route("/<string:request_id>/approve")
class Approve(MethodView):
    @login_blp.doc(security=BEARER_SECURITY)
    @login_blp.response(200, LoginRequestSchema)
    def post(self, request_id: str) -> dict:
        """Sign the waiting browser in as this citizen (the consent is still asked there)."""
        return _decide(request_id, True)


@login_blp.route("/<string:request_id>/deny")
class Deny(MethodView):
    @login_blp.doc(security=BEARER_SECURITY)
    @login_blp.response(200, LoginRequestSchema)
    def post(self, request_id: str) -> dict:
        """Refuse the sign-in."""
        return _decide(request_id, False)
