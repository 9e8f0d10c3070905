"""Refresh and logout for every channel."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import BEARER_SECURITY, current_principal, public, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.middleware import client_ip
from api.schemas import RefreshRequestSchema, TokenResponseSchema
from core.db import db
from domain.auth import sessions

# A lost token response is retried within moments; replaying it for a day would only widen
# the window in which a leaked, already-rotated refresh token still yields the current tokens.
TOKEN_REPLAY_TTL = 300

blp = Blueprint("tokens", __name__, url_prefix="/v1/auth", description="登录凭证 / Tokens")
blp.before_request(require_citizen)


def token_body(pair: sessions.TokenPair, *, new_account: bool | None = None) -> dict:
    """The JSON body of a token response."""
    body = {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "session_id": pair.session_id,
        "account_id": pair.account_id,
    }
    if new_account is not None:
        body["new_account"] = new_account
    return body


@blp.route("/refresh")
class Refresh(MethodView):
    @public
    @idempotent(ttl=TOKEN_REPLAY_TTL)
    @blp.arguments(RefreshRequestSchema)
    @blp.response(200, TokenResponseSchema)
    def post(self, body: dict) -> dict:
        """Exchange a refresh token for new tokens; the old refresh token stops working.

        Send an Idempotency-Key: a retry after a lost response then gets the same new tokens
        instead of tripping reuse detection (which signs the device out).
        """
        svc = services()
        svc.ratelimiter.hit("refresh-ip", client_ip(), limit=600, window=60)
        pair = sessions.refresh(
            db.session(), tokens=svc.tokens, policy=svc.citizen_policy,
            revocations=svc.revocations, refresh_token=body["refresh_token"],
        )  # fmt: skip
        return token_body(pair)


@blp.route("/logout")
class Logout(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def post(self) -> None:
        """End the current session; its access and refresh tokens stop working at once."""
        p = current_principal()
        sessions.revoke_session(
            db.session(), revocations=services().revocations, account_id=p.account_id,
            session_id=p.session_id, reason="logout",
        )  # fmt: skip
