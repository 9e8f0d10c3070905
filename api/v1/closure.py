"""Closing one's own account (注销): what stands in the way, and the closure itself."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, current_principal, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.i18n import language
from api.idempotency import idempotent
from api.middleware import client_ip
from api.schemas import JsonBoolean, StrictSchema
from core.db import db
from core.errors import Text
from domain.closure import service as closure

blp = Blueprint(
    "account_closure", __name__, url_prefix="/v1/me/closure", description="注销账号 / Close the account"
)
blp.before_request(require_citizen)


class BlockerSchema(StrictSchema):
    type = fields.String(
        required=True, metadata={"description": "application, appointment, complaint, rectification_appeal"}
    )
    id = fields.String(required=True)
    status = fields.String(required=True)
    ref = fields.String(
        allow_none=True,
        metadata={"description": "case number (also of the rated case), booking day, tracking number"},
    )
    label = fields.String(
        required=True, metadata={"description": "what to tell the citizen (Accept-Language)"}
    )
    name = fields.String(metadata={"description": "the service's name (applications)"})


class ClosurePreviewSchema(StrictSchema):
    can_close = fields.Boolean(
        required=True,
        metadata={"description": "a closure asked now would succeed: no blockers and a fresh login"},
    )
    blockers = fields.List(fields.Nested(BlockerSchema), required=True)
    drafts = fields.Integer(required=True, metadata={"description": "drafts the closure deletes"})
    fresh_login_required = fields.Boolean(
        required=True, metadata={"description": "this session is too old: log in again first"}
    )
    fresh_login_max_age_seconds = fields.Integer(required=True)


class ClosureRequestSchema(StrictSchema):
    confirm = JsonBoolean(  # JSON true only: "yes", 1 or "true" are not a confirmation
        required=True,
        validate=validate.Equal(
            True, error=Text("Must be true to close the account", "须为 true 才能注销账号")
        ),
        metadata={"description": "true: the citizen confirmed on the closure page"},
    )


class ClosedSchema(StrictSchema):
    closed_at = fields.DateTime(required=True)
    drafts_deleted = fields.Integer(required=True)


@blp.route("")
class Closure(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ClosurePreviewSchema)
    def get(self) -> dict:
        """Whether the account can be closed now, and every case, booking, complaint or appeal in the way."""
        p = current_principal()
        return closure.preview(db.reader(), account_id=p.account_id, session_id=p.session_id, lang=language())

    @idempotent(required=True)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ClosureRequestSchema)
    @blp.response(200, ClosedSchema)
    def post(self, body: dict) -> dict:
        """Close the account for good: needs a login within the last 10 minutes; 409
        `account.closure_blocked` lists what is still open; 503 `account.closure_busy` with
        Retry-After while a case is being written (not counted as an attempt); 429
        `rate_limited` past 10 attempts an hour. Every token ends with it."""
        p = current_principal()
        done = closure.close(
            db.session(), revocations=services().revocations, applications=services().applications,
            encryptor=services().encryptor, ratelimiter=services().ratelimiter,
            account_id=p.account_id, session_id=p.session_id, request_id=g.get("request_id"), ip=client_ip(),
            lang=language(),
        )  # fmt: skip
        return {"closed_at": done.closed_at, "drafts_deleted": done.drafts_deleted}
