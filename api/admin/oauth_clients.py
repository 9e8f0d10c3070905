"""Convenience apps (OAuth clients), registered and approved by operators (role admin).

A client starts pending; only approved clients can ask citizens for consent or get tokens.
Suspending one ends every token it holds at once. A client secret appears only in the answer
that made it (registration or rotation); yiwang keeps its hash.
"""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.schemas import StrictSchema, VisibleText
from core.db import db
from domain.oauth import clients
from domain.oauth.models import CLIENT_STATUSES, OAuthClient
from domain.oauth.scopes import SCOPES
from domain.operators.models import ROLE_ADMIN

blp = Blueprint(
    "admin_oauth_clients",
    __name__,
    url_prefix="/admin/v1/oauth-clients",
    description="第三方应用 / OAuth clients",
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_ADMIN))


class ClientCreateSchema(StrictSchema):
    # Both are shown to citizens on the consent page.
    name = VisibleText(required=True, validate=validate.Length(min=1, max=64))
    contact = VisibleText(required=True, validate=validate.Length(min=1, max=128))
    logo_url = fields.String(validate=validate.Length(max=300))
    client_type = fields.String(required=True, validate=validate.OneOf(["confidential", "public"]))
    auth_method = fields.String(validate=validate.OneOf(["client_secret_basic", "private_key_jwt", "none"]))
    jwks = fields.Dict()
    redirect_uris = fields.List(fields.String(validate=validate.Length(min=1, max=500)), load_default=list,
                                validate=validate.Length(max=10))  # fmt: skip
    scopes = fields.List(fields.String(validate=validate.OneOf(list(SCOPES))), required=True,
                         validate=validate.Length(min=1))  # fmt: skip


class ClientSchema(StrictSchema):
    client_id = fields.String(required=True)
    name = fields.String(required=True)
    contact = fields.String(required=True)
    logo_url = fields.String(allow_none=True)
    client_type = fields.String(required=True)
    auth_method = fields.String(required=True)
    redirect_uris = fields.List(fields.String(), required=True)
    scopes = fields.List(fields.String(), required=True)
    status = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    status_changed_at = fields.DateTime(allow_none=True)


class ClientCreatedSchema(StrictSchema):
    client = fields.Nested(ClientSchema, required=True)
    client_secret = fields.String(allow_none=True, metadata={"description": "shown once"})


class StatusSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(CLIENT_STATUSES))


def client_body(c: OAuthClient) -> dict:
    return {
        "client_id": c.id, "name": c.name, "contact": c.contact, "logo_url": c.logo_url,
        "client_type": c.client_type, "auth_method": c.auth_method, "redirect_uris": list(c.redirect_uris),
        "scopes": c.scopes.split(), "status": c.status, "created_at": c.created_at,
        "status_changed_at": c.status_changed_at,
    }  # fmt: skip


@blp.route("")
class Clients(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ClientSchema(many=True))
    def get(self) -> list[dict]:
        """Every registered app, oldest first."""
        return [client_body(c) for c in clients.list_all(db.session())]

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ClientCreateSchema)
    @blp.response(201, ClientCreatedSchema)
    def post(self, body: dict) -> dict:
        """Register an app (pending). Redirect URIs must be https, or for native apps a loopback
        IP (any port) or a reverse-domain scheme; no fragments, userinfo or wildcards."""
        reg = clients.register(db.session(), actor=current_actor(), **body)
        return {"client": client_body(reg.client), "client_secret": reg.client_secret}


@blp.route("/<string:client_id>")
class OneClient(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ClientSchema)
    def get(self, client_id: str) -> dict:
        return client_body(clients.get(db.session(), client_id))


@blp.route("/<string:client_id>/status")
class ClientStatus(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(StatusSchema)
    @blp.response(200, ClientSchema)
    def post(self, body: dict, client_id: str) -> dict:
        """Approve, or suspend (every token of the app stops working at once)."""
        client = clients.set_status(db.session(), actor=current_actor(), revocations=services().revocations,
                                    client_id=client_id, status=body["status"])  # fmt: skip
        return client_body(client)


@blp.route("/<string:client_id>/secret")
class ClientSecret(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ClientCreatedSchema)
    def post(self, client_id: str) -> dict:
        """Issue a new client secret (the old one stops working now); shown only here."""
        reg = clients.rotate_secret(db.session(), actor=current_actor(), client_id=client_id)
        return {"client": client_body(reg.client), "client_secret": reg.client_secret}
