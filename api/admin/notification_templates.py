"""Notification templates per event × channel × language (role catalog_editor)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields

from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.schemas import StrictSchema
from core.db import db
from domain.operators.models import ROLE_CATALOG_EDITOR
from notifications import templates

blp = Blueprint(
    "admin_notification_templates", __name__, url_prefix="/admin/v1/notification-templates",
    description="通知模板 / Notification templates",
)  # fmt: skip
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_CATALOG_EDITOR))


class TemplateSchema(StrictSchema):
    event_type = fields.String()
    channel = fields.String()
    lang = fields.String()
    content = fields.Dict()
    overridden = fields.Boolean()
    source = fields.String(
        metadata={
            "description": "where the content sent comes from: own (this template's override), inbox "
            "(push without its own: the inbox override), built_in"
        }
    )
    version = fields.Integer()
    updated_by = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class TemplateInSchema(StrictSchema):
    content = fields.Dict(
        required=True,
        metadata={
            "description": "inbox/push {title, body}; wechat {template_id, fields: {keyword: text}, page?}; "
            "sms {template_id, params: [text]}; texts use {placeholders}. page: a mini-program page "
            "(e.g. pages/applications/detail, at most 128 characters), without placeholders or id: the "
            "application's id is added when sent"
        },
    )


@blp.route("")
class Templates(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, TemplateSchema(many=True))
    def get(self) -> list:
        """Every template, with the wording in effect and whether an operator changed it."""
        return templates.listing(db.session(), settings=services().notifications.settings)


@blp.route("/<string:event_type>/<string:channel>/<string:lang>")
class OneTemplate(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(TemplateInSchema)
    @blp.response(200, TemplateSchema)
    def put(self, body: dict, event_type: str, channel: str, lang: str) -> dict:
        """Replace the wording; it is checked against the channel's limits with long sample values."""
        session = db.session()
        templates.save(session, event_type, channel, lang, body["content"], actor=current_actor())
        session.commit()
        return _one(event_type, channel, lang)

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def delete(self, event_type: str, channel: str, lang: str) -> None:
        """Go back to the built-in wording."""
        session = db.session()
        templates.remove(session, event_type, channel, lang, actor=current_actor())
        session.commit()


def _one(event_type: str, channel: str, lang: str) -> dict:
    rows = templates.listing(db.session(), settings=services().notifications.settings)
    return next(r for r in rows if (r["event_type"], r["channel"], r["lang"]) == (event_type, channel, lang))
