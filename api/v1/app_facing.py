"""What a convenience app may learn or do with the citizen's grant, beyond applications:
a masked profile (profile.basic), a yes/no identity match (identity.match), a notice to the
inbox (notifications.send). First-party tokens may read the profile too."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, current_principal, require_citizen, scope
from api.blueprint import Blueprint
from api.deps import services
from api.schemas import StrictSchema, VisibleText
from core.db import db
from core.errors import AppError
from domain.accounts.models import Account
from domain.auth.sessions import Principal
from domain.identity.binding import identity_of
from domain.oauth import identity_match
from domain.oauth.usage import client_name
from notifications import app_messages

blp = Blueprint("app_facing", __name__, url_prefix="/v1/me", description="第三方应用可用的接口 / For apps")
blp.before_request(require_citizen)
notes_blp = Blueprint(
    "app_notices", __name__, url_prefix="/v1/notifications", description="应用消息 / Notices from apps"
)
notes_blp.before_request(require_citizen)
BLUEPRINTS = [blp, notes_blp]


class AppsOnly(AppError):
    status = 403
    code = "oauth.apps_only"
    message_zh = "此接口仅供经您授权的第三方应用使用"
    message_en = "Only third-party apps with the citizen's grant use this endpoint"


def _app_principal() -> Principal:
    """The principal of a request made by a third-party app (first-party tokens are refused)."""
    p = current_principal()
    if p.client_id is None:
        raise AppsOnly()
    return p


class BasicProfileSchema(StrictSchema):
    name = fields.String(allow_none=True, metadata={"description": "masked, e.g. 张*"})
    identity_level = fields.String(required=True)


class MatchAskSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=24))


class MatchSchema(StrictSchema):
    match = fields.Boolean(required=True)


class AppNoticeSchema(StrictSchema):
    message_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    title = VisibleText(required=True, validate=validate.Length(min=1, max=30))
    body = VisibleText(required=True, validate=validate.Length(min=1, max=500))


class AppNoticeResultSchema(StrictSchema):
    id = fields.String(allow_none=True)
    duplicate = fields.Boolean(required=True)


@blp.route("/basic-profile")
class BasicProfile(MethodView):
    @scope("profile.basic")
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, BasicProfileSchema)
    def get(self) -> dict:
        """The masked name (when the identity is verified) and the identity level."""
        p = current_principal()
        verified = identity_of(db.reader(), p.account_id)
        account = db.reader().get(Account, p.account_id)
        return {
            "name": verified.name_masked if verified is not None else None,
            "identity_level": account.identity_level if account is not None else "L1",
        }


@blp.route("/identity-match")
class IdentityMatch(MethodView):
    @scope("identity.match")
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(MatchAskSchema)
    @blp.response(200, MatchSchema)
    def post(self, body: dict) -> dict:
        """Whether a name and ID number the app holds are the citizen's verified identity: yes or
        no, never the number. At most 10 questions an hour per app and citizen, and after 5
        "no" answers in 24 hours 429 `rate_limited` (`details.scope` `oauth-identity-mismatch`)
        until the day has passed: the question cannot be used to guess an ID number."""
        p = _app_principal()
        svc = services()
        matched = identity_match.match(
            db.session(), hasher=svc.hasher, encryptor=svc.encryptor, ratelimiter=svc.ratelimiter,
            account_id=p.account_id, client_id=p.client_id,
            name=body["name"], id_number=body["id_number"],
            request_id=g.get("request_id"),
        )  # fmt: skip
        return {"match": matched}


@notes_blp.route("")
class AppNotice(MethodView):
    @scope("notifications.send")
    @notes_blp.doc(security=BEARER_SECURITY)
    @notes_blp.arguments(AppNoticeSchema)
    @notes_blp.response(202, AppNoticeResultSchema)
    def post(self, body: dict) -> dict:
        """Post a notice to the citizen's inbox (inbox only, 20 a day per app). The same
        message_id again is the same notice."""
        p = _app_principal()
        svc = services()
        session = db.session()
        note = app_messages.post(
            session, svc.notifications.settings, svc.ratelimiter, account_id=p.account_id,
            client_id=p.client_id, client_name=client_name(db.autocommit, p.client_id),
            message_id=body["message_id"], title=body["title"], body=body["body"],
        )  # fmt: skip
        return {"id": note.id if note is not None else None, "duplicate": note is None}
