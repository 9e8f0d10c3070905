"""Push devices of the app, and the mini-program's subscribe-message choices."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, current_principal, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.openapi_answers import BOOLEAN, INTEGER, json_answer, object_of
from api.schemas import StrictSchema
from core.db import db
from notifications import devices, fanout
from notifications.events import PUSH_PROVIDERS

blp = Blueprint("devices", __name__, url_prefix="/v1/devices", description="推送设备 / Push devices")
blp.before_request(require_citizen)
subs_blp = Blueprint(
    "miniprogram_subscriptions", __name__, url_prefix="/v1/miniprogram/subscriptions",
    description="小程序订阅消息 / Mini-program subscribe messages",
)  # fmt: skip
subs_blp.before_request(require_citizen)
BLUEPRINTS = [blp, subs_blp]


class DeviceInSchema(StrictSchema):
    provider = fields.String(required=True, validate=validate.OneOf(PUSH_PROVIDERS))
    token = fields.String(required=True, validate=validate.Length(min=8, max=255))
    platform = fields.String(required=True, validate=validate.OneOf(("ios", "android", "harmony")))
    label = fields.String(load_default=None, validate=validate.Length(max=64))


class DeviceSchema(StrictSchema):
    id = fields.String()
    provider = fields.String()
    platform = fields.String()
    label = fields.String(allow_none=True)
    created_at = fields.DateTime()
    last_seen_at = fields.DateTime()


class SubscriptionsInSchema(StrictSchema):
    results = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=fields.String(validate=validate.OneOf(("accept", "reject", "ban", "filter"))),
        required=True, validate=validate.Length(min=1, max=20),
        metadata={"description": "wx.requestSubscribeMessage's answer: {template id: accept|reject|ban}"},
    )  # fmt: skip


@blp.route("")
class Devices(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, DeviceSchema(many=True))
    def get(self) -> list:
        """The account's devices that receive push."""
        return devices.list_devices(db.reader(), current_principal().account_id)

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(DeviceInSchema)
    @blp.response(201, DeviceSchema)
    def post(self, body: dict) -> object:
        """Register this installation's push token (again after the provider renews it)."""
        session = db.session()
        device = devices.register(session, current_principal().account_id, **body)
        session.commit()
        return device


@blp.route("/<string:device_id>")
class OneDevice(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def delete(self, device_id: str) -> None:
        """Stop push to this device (logout, or notifications turned off on the phone)."""
        session = db.session()
        devices.remove(session, current_principal().account_id, device_id)
        session.commit()


_QUOTA = json_answer(
    "per template: messages it may still send, and whether it is long-term",
    object_of(
        templates={"type": "object", "additionalProperties": object_of(remaining=INTEGER, long_term=BOOLEAN)}
    ),
)


@subs_blp.route("")
class Subscriptions(MethodView):
    @idempotent
    @subs_blp.doc(security=BEARER_SECURITY, responses={200: _QUOTA})
    @subs_blp.arguments(SubscriptionsInSchema)
    def post(self, body: dict) -> dict:
        """Report which templates the citizen accepted; each one-time acceptance allows one message."""
        p = current_principal()
        session = db.session()
        settings = services().notifications.settings
        has_wechat = fanout.wechat_identity(session, p.account_id, settings.wechat_appid) is not None
        quota = devices.record_subscriptions(
            session, p.account_id, body["results"], has_wechat=has_wechat, long_term=settings.wechat_long_term
        )
        session.commit()
        return {"templates": quota}
