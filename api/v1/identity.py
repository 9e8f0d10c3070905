"""Real-name verification for the logged-in citizen: level, verifications, full values, step-up."""

from __future__ import annotations

from typing import Any

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
from core import clock
from core.db import db
from domain.accounts import service as accounts
from domain.auth import sessions
from domain.catalog.versions import pin_current, version_document
from domain.identity import levels, service
from domain.identity.consent import face_consent_text
from domain.identity.deps import IdentityDeps, Outcome
from domain.identity.errors import NotVerified
from domain.identity.models import CITIZEN_METHODS, PENDING, IdentityVerification
from domain.identity.read import identity_view
from domain.identity.reasons import reason_message

blp = Blueprint("identity", __name__, url_prefix="/v1", description="实名认证 / Real-name verification")
blp.before_request(require_citizen)


class ConsentSchema(StrictSchema):
    accepted = JsonBoolean(required=True, metadata={"description": "the citizen ticked the separate box"})
    text_version = fields.String(required=True, validate=validate.Length(max=32))


class StartSchema(StrictSchema):
    method = fields.String(required=True, validate=validate.OneOf(CITIZEN_METHODS))
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=32))
    consent = fields.Nested(ConsentSchema, metadata={"description": "required for face methods"})


class VerificationSchema(StrictSchema):
    id = fields.String()
    method = fields.String()
    status = fields.String(metadata={"description": "pending, passed, failed or expired"})
    reason = fields.String(allow_none=True)
    reason_message = fields.String(allow_none=True)
    name = fields.String(metadata={"description": "masked"})
    id_number = fields.String(metadata={"description": "masked"})
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    client = fields.Dict(
        allow_none=True,
        metadata={"description": "what the provider's SDK needs: verify_id, biz_token + url, or certify_url"},
    )


class TokensSchema(StrictSchema):
    access_token = fields.String()
    expires_in = fields.Integer()
    token_type = fields.String()
    refresh_token = fields.String(metadata={"description": "only after an account merge (new session)"})


class CompletedSchema(StrictSchema):
    verification = fields.Nested(VerificationSchema)
    identity_level = fields.String()
    merged = fields.Boolean()
    tokens = fields.Nested(TokensSchema, allow_none=True)


class IdentitySchema(StrictSchema):
    level = fields.String()
    method = fields.String(allow_none=True)
    verified_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    live_checked_at = fields.DateTime(allow_none=True)
    name = fields.String(allow_none=True, metadata={"description": "masked, e.g. 张*三"})
    id_number = fields.String(allow_none=True, metadata={"description": "masked, e.g. 110***********1234"})
    upgrade_methods = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class FullQuerySchema(StrictSchema):
    purpose = fields.String(
        required=True,
        validate=validate.OneOf(("view", "copy", "show_at_counter")),
        metadata={"description": "why the owner reads the full values (recorded in the audit trail)"},
    )


class FullIdentitySchema(StrictSchema):
    name = fields.String()
    id_number = fields.String()


class ConsentTextSchema(StrictSchema):
    text_version = fields.String()
    text = fields.String()
    methods = fields.List(fields.String())


class RequirementSchema(StrictSchema):
    meets = fields.Boolean()
    required_level = fields.String()
    face_within_minutes = fields.Integer(allow_none=True)
    current_level = fields.String()


def _deps() -> IdentityDeps:
    return services().identity


def _verification_body(row: IdentityVerification, client: dict | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "method": row.method,
        "status": row.status,
        "reason": row.reason,
        "reason_message": reason_message(row.reason, language(), row.method),
        "name": row.name_masked,
        "id_number": row.id_number_masked,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "completed_at": row.completed_at,
        "client": client,
    }


def _tokens_after(outcome: Outcome) -> dict[str, Any] | None:
    """New tokens carrying the raised level: the same session, or a new one after a merge."""
    if not outcome.level_changed:
        return None
    p = current_principal()
    svc = services()
    if outcome.access_token:  # minted by the service with the level it just committed
        return {"access_token": outcome.access_token, "expires_in": svc.citizen_policy.access_ttl,
                "token_type": "Bearer"}  # fmt: skip
    session = db.session()
    if outcome.merged_from:
        target = accounts.get_account(session, outcome.account_id)
        pair = sessions.start_session(
            session, tokens=svc.tokens, policy=svc.citizen_policy, account=target,
            channel=p.channel, device_label=None,
        )  # fmt: skip
        return {"access_token": pair.access_token, "refresh_token": pair.refresh_token,
                "expires_in": pair.expires_in, "token_type": "Bearer"}  # fmt: skip
    access = sessions.reissue_access(
        session, tokens=svc.tokens, policy=svc.citizen_policy,
        account_id=p.account_id, session_id=p.session_id,
    )  # fmt: skip
    return {"access_token": access, "expires_in": svc.citizen_policy.access_ttl, "token_type": "Bearer"}


def _completed_body(outcome: Outcome) -> dict[str, Any]:
    level = outcome.identity_level or accounts.get_account(db.session(), outcome.account_id).identity_level
    return {
        "verification": _verification_body(outcome.verification, outcome.client_payload),
        "identity_level": level,
        "merged": outcome.merged_from is not None,
        "tokens": _tokens_after(outcome),
    }


@blp.route("/identity")
class Identity(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, IdentitySchema)
    def get(self) -> dict:
        """Level, latest method and times, masked name and ID number, and how to go higher."""
        p = current_principal()
        return identity_view(
            db.reader(), p.account_id, offered=_deps().policy.methods(p.channel), cache=services().profiles
        )


@blp.route("/identity/full")
class FullIdentity(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(FullQuerySchema, location="query")
    @blp.response(200, FullIdentitySchema)
    def get(self, args: dict) -> dict:
        """The full name and ID number, for the owner only; every read is audited with its purpose."""
        p = current_principal()
        values = service.full_identity(
            db.session(), encryptor=services().encryptor, account_id=p.account_id,
            purpose=args["purpose"], ip=client_ip(), request_id=g.get("request_id"),
        )  # fmt: skip
        if values is None:
            raise NotVerified()
        return {"name": values[0], "id_number": values[1]}


@blp.route("/identity/consent")
class ConsentText(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ConsentTextSchema)
    def get(self) -> dict:
        """The face-recognition consent to show before a face check, and the methods offered here."""
        policy = _deps().policy
        text = face_consent_text(policy.consent_version)
        return {
            "text_version": policy.consent_version,
            "text": text["en"] if language() == "en" else text["zh"],
            "methods": list(policy.methods(current_principal().channel)),
        }


@blp.route("/identity/verifications")
class Verifications(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(StartSchema)
    @blp.response(201, CompletedSchema)
    def post(self, body: dict) -> dict:
        """Start a verification: face methods answer what the SDK needs; an ID check answers at once."""
        p = current_principal()
        outcome = service.start(
            db.session(), deps=_deps(), account_id=p.account_id, channel=p.channel,
            method=body["method"], name=body["name"], id_number=body["id_number"],
            consent=body.get("consent"), ip=client_ip(), request_id=g.get("request_id"),
            session_id=p.session_id, reader=db.reader(),
        )  # fmt: skip
        return _completed_body(outcome)


@blp.route("/identity/verifications/<string:verification_id>")
class VerificationItem(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, VerificationSchema)
    def get(self, verification_id: str) -> dict:
        """One of the citizen's verifications."""
        row = service.get_verification(
            db.session(), account_id=current_principal().account_id, verification_id=verification_id
        )
        return _verification_body(row)


@blp.route("/identity/verifications/<string:verification_id>/complete")
class CompleteVerification(MethodView):
    @idempotent(keep_accepted=False)  # pending: a retry asks the provider again
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, CompletedSchema)
    @blp.alt_response(202, schema=CompletedSchema, description="the citizen has not finished at the provider")
    def post(self, verification_id: str) -> tuple[dict, int] | dict:
        """Ask the provider for the result (the phone's word is never taken) and apply it."""
        p = current_principal()
        outcome = service.complete(
            db.session(), deps=_deps(), account_id=p.account_id, verification_id=verification_id,
            request_id=g.get("request_id"), session_id=p.session_id, reader=db.reader(),
        )  # fmt: skip
        body = _completed_body(outcome)
        return (body, 202) if outcome.verification.status == PENDING else body


@blp.route("/services/<string:code>/identity-check")
class ServiceIdentityCheck(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, RequirementSchema)
    def get(self, code: str) -> dict:
        """Whether the citizen's token meets the item's identity requirement (403 says what is missing)."""
        p = current_principal()
        session = db.reader()
        pin = pin_current(session, code)
        requirement = levels.Requirement.of(version_document(session, code, pin.version).get("identity"))
        levels.check(
            requirement, level=p.identity_level, live_checked_at=p.claims.get("ilt"),
            now=clock.timestamp(), offered=_deps().policy.methods(p.channel),
        )  # fmt: skip
        return {
            "meets": True,
            "required_level": requirement.min_level,
            "face_within_minutes": requirement.face_within_minutes,
            "current_level": p.identity_level,
        }
