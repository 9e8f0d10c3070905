"""App login by SMS one-time code: send a code, then log in with it."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import public, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.middleware import client_ip
from api.schemas import DeviceLabelMixin, StrictSchema, TokenResponseSchema
from api.v1.tokens import TOKEN_REPLAY_TTL, token_body
from core.db import db
from domain.auth import sms_login

blp = Blueprint("sms_login", __name__, url_prefix="/v1/auth/sms", description="短信验证码登录 / SMS login")
blp.before_request(require_citizen)


def _phone_field() -> fields.String:
    return fields.String(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "mainland mobile number; +86, spaces and dashes are accepted"},
    )


class SmsSendSchema(StrictSchema):
    phone = _phone_field()


class SmsSentSchema(StrictSchema):
    expires_in = fields.Integer(metadata={"description": "seconds the code stays valid"})
    resend_after = fields.Integer(metadata={"description": "seconds before another code may be requested"})
    challenge_id = fields.String(
        metadata={"description": "send it back with the code: it names the code as this app's own"}
    )


class SmsLoginSchema(DeviceLabelMixin, StrictSchema):
    phone = _phone_field()
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"\A[0-9]{6}\Z"),
        # The document gives the pattern as clients' (ECMA-262) regexes read it: \A and \Z are Python's.
        metadata={"description": "the 6-digit code from the SMS", "pattern": "^[0-9]{6}$"},
    )
    challenge_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "the `challenge_id` of the send: wrong codes others type for the number "
            "then cannot use up this code's attempts, even when the phone's address changed"
        },
    )


def _policy() -> sms_login.OtpPolicy:
    return sms_login.OtpPolicy.from_config(current_app.config)


def send_code_for(phone: str) -> sms_login.CodeSent:
    """Send a login code (also used by the OAuth sign-in page)."""
    svc = services()
    return sms_login.send_code(
        db.session(), encryptor=svc.encryptor, hasher=svc.hasher, ratelimiter=svc.ratelimiter,
        policy=_policy(), phone=phone, ip=client_ip(),
    )  # fmt: skip


@blp.route("/send")
class SendCode(MethodView):
    @public
    @idempotent(per_address=True)  # the answer's challenge_id is the asker's alone
    @blp.arguments(SmsSendSchema)
    @blp.response(202, SmsSentSchema)
    def post(self, body: dict) -> dict:
        """Send a login code by SMS.

        The answer is the same whether or not the number has an account. At most one code per
        number per `resend_after` seconds and a few per hour from one address, and a few more
        per hour and day from every address together; over a limit the answer is 429 with
        Retry-After. A new code replaces the previous one this address asked for, never one
        someone else asked for. Keep `challenge_id` for the login.
        """
        sent = send_code_for(body["phone"])
        return {
            "expires_in": sent.expires_in,
            "resend_after": sent.resend_after,
            "challenge_id": sent.challenge_id,
        }


@blp.route("/login")
class Login(MethodView):
    @public
    @idempotent(ttl=TOKEN_REPLAY_TTL)
    @blp.arguments(SmsLoginSchema)
    @blp.response(200, TokenResponseSchema)
    def post(self, body: dict) -> dict:
        """Log in with the code; the account is created on the first login of a number.

        A wrong code answers 400 auth.otp_invalid with the attempts left; after too many the
        code is burned (auth.otp_attempts_exceeded); an expired or used code answers
        auth.otp_expired. Wrong codes typed by anyone but the one who asked for the code (the
        app sending its `challenge_id`, or the asking address) never burn it: after too many they
        are refused with auth.otp_attempts_exceeded for the others only. Send an
        Idempotency-Key so a retry after a lost answer gets the same tokens instead of
        auth.otp_expired.
        """
        svc = services()
        result = sms_login.verify_and_login(
            db.session(), encryptor=svc.encryptor, hasher=svc.hasher, ratelimiter=svc.ratelimiter,
            tokens=svc.tokens, session_policy=svc.citizen_policy, policy=_policy(),
            phone=body["phone"], code=body["code"], ip=client_ip(),
            device_label=body.get("device_label"), request_id=g.get("request_id"),
            challenge_id=body.get("challenge_id"),
        )  # fmt: skip
        return token_body(result.tokens, new_account=result.new_account)
