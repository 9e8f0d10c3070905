"""Mini-program login (wx.login code) and phone binding (getPhoneNumber code)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from api.auth import BEARER_SECURITY, current_principal, public, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.middleware import client_ip
from api.schemas import TokenResponseSchema
from api.v1.tokens import TOKEN_REPLAY_TTL, token_body
from core.db import db
from domain.auth import wechat_login
from miniprogram_bridge.schemas import MiniprogramLoginSchema, PhoneBindResponseSchema, PhoneCodeSchema

blp = Blueprint(
    "miniprogram_login",
    __name__,
    url_prefix="/v1/auth/miniprogram",
    description="小程序登录 / Mini-program login",
)
blp.before_request(require_citizen)

PHONE_BINDS_PER_ACCOUNT_PER_MINUTE = 10


@blp.route("/login")
class MiniprogramLogin(MethodView):
    @public
    @idempotent(ttl=TOKEN_REPLAY_TTL)
    @blp.arguments(MiniprogramLoginSchema)
    @blp.response(200, TokenResponseSchema)
    def post(self, body: dict) -> dict:
        """Log in with the code from wx.login; the account is created on the first login.

        Send an Idempotency-Key: a retry after a lost response gets the same tokens instead of
        auth.wechat_code_invalid (WeChat codes are single use).

        Errors: 400 auth.wechat_code_invalid (code used or expired: call wx.login again),
        403 auth.wechat_risky_user, 429 rate_limited (Retry-After), 502 upstream_unavailable.
        """
        svc = services()
        ip = client_ip()
        svc.ratelimiter.hit("mp-login-ip", ip, limit=current_app.config["LOGIN_PER_IP_PER_MINUTE"], window=60)
        login = wechat_login.login_miniprogram(
            db.session(), wechat=svc.wechat, encryptor=svc.encryptor, tokens=svc.tokens,
            policy=svc.citizen_policy, code=body["code"], device_label=body.get("device_label"), ip=ip,
        )  # fmt: skip
        return token_body(login.tokens, new_account=login.new_account)


@blp.route("/phone")
class MiniprogramPhone(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(PhoneCodeSchema)
    @blp.response(200, PhoneBindResponseSchema)
    def post(self, body: dict) -> dict:
        """Bind the phone number WeChat vouches for (code from the getPhoneNumber button).

        If the number already belongs to an account (e.g. made in the app by SMS), this account
        is merged into it: the response carries that account's tokens and the current tokens stop
        working. Errors: 400 auth.wechat_phone_code_invalid, 403 auth.wechat_session_required,
        409 account.phone_bound_elsewhere, 422 account.phone_invalid (not a mainland number).
        """
        p = current_principal()
        svc = services()
        svc.ratelimiter.hit(
            "mp-phone-account", p.account_id, limit=PHONE_BINDS_PER_ACCOUNT_PER_MINUTE, window=60
        )
        bound = wechat_login.bind_wechat_phone(
            db.session(), wechat=svc.wechat, encryptor=svc.encryptor, hasher=svc.hasher,
            tokens=svc.tokens, policy=svc.citizen_policy, revocations=svc.revocations,
            account_id=p.account_id, session_id=p.session_id, code=body["code"], ip=client_ip(),
        )  # fmt: skip
        return {
            "phone": bound.phone_masked,
            "merged": bound.merged,
            "tokens": token_body(bound.tokens) if bound.tokens else None,
        }
