"""The logged-in citizen: profile and sessions (devices)."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, cached_views, current_principal, reads_cached, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.schemas import AccountSchema, FullPhoneSchema, SessionSchema, StrictSchema
from core.db import db
from domain.accounts import service as accounts
from domain.auth import sessions
from domain.ledger import service as ledger

blp = Blueprint("me", __name__, url_prefix="/v1/me", description="我的账号 / My account")
blp.before_request(require_citizen)


@blp.route("")
class Me(MethodView):
    @reads_cached("profile")
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, AccountSchema)
    def get(self) -> dict:
        """The account of the token, with the phone masked (the full number: GET /v1/me/phone)."""
        p = current_principal()
        profile = accounts.profile(db.reader(), p.account_id, cache=cached_views())
        return {
            "id": profile.id,
            "status": profile.status,
            "identity_level": profile.identity_level,
            "created_at": profile.created_at,
            "phone": profile.masked_phone,
            "channels": profile.channels,
            "session_id": p.session_id,
            "channel": p.channel,
        }


@blp.route("/phone")
class MyPhone(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, FullPhoneSchema)
    def get(self) -> dict:
        """The full phone number, for the owner to check or copy; every read is audited."""
        p = current_principal()
        session = db.session()
        phone = accounts.full_phone(
            session, encryptor=services().encryptor, account_id=p.account_id,
            actor_id=p.account_id, request_id=g.get("request_id"),
        )  # fmt: skip
        session.commit()
        return {"phone": phone}


@blp.route("/sessions")
class MySessions(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, SessionSchema(many=True))
    def get(self) -> list[dict]:
        """Open sessions (devices) of the account, most recently seen first."""
        p = current_principal()
        rows = sessions.list_sessions(db.session(), account_id=p.account_id)
        return [
            {
                "id": s.id,
                "channel": s.channel,
                "device_label": s.device_label,
                "created_at": s.created_at,
                "last_seen_at": s.last_seen_at,
                "current": s.id == p.session_id,
            }
            for s in rows
        ]


@blp.route("/sessions/<string:session_id>")
class MySession(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def delete(self, session_id: str) -> None:
        """Sign out one device; its access tokens stop working at once."""
        p = current_principal()
        sessions.revoke_session(
            db.session(), revocations=services().revocations, account_id=p.account_id,
            session_id=session_id, reason="user_revoked",
        )  # fmt: skip


class DataAccessArgs(StrictSchema):
    before = fields.String(load_default=None, validate=validate.Length(max=36))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class AccessorSchema(StrictSchema):
    type = fields.String(metadata={"description": "yiwang, client, operator, department"})
    id = fields.String(allow_none=True)
    name = fields.String()


class DataAccessSchema(StrictSchema):
    id = fields.String()
    at = fields.String()
    accessor = fields.Nested(AccessorSchema)
    source = fields.String(metadata={"description": "exchange, ecert, wallet, api"})
    resource = fields.String(metadata={"description": "dataset:<id>, certificate:<identifier>, ..."})
    resource_name = fields.String()
    purpose = fields.String()
    application_id = fields.String(allow_none=True)
    scope = fields.String(allow_none=True)


class DataAccessPageSchema(StrictSchema):
    items = fields.List(fields.Nested(DataAccessSchema))
    next = fields.String(allow_none=True, metadata={"description": "pass as `before` for the next page"})


@blp.route("/data-access")
class MyDataAccess(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(DataAccessArgs, location="query")
    @blp.response(200, DataAccessPageSchema)
    def get(self, args: dict) -> dict:
        """Who used my data, when, which data, and why (newest first)."""
        items, nxt = ledger.page(
            db.session(), account_id=current_principal().account_id, before=args["before"],
            limit=args["limit"],
        )  # fmt: skip
        return {"items": items, "next": nxt}
