"""Revocation (RFC 7009), introspection (RFC 7662), private_key_jwt (RFC 7523), iss (RFC 9207)."""

from __future__ import annotations

import logging
import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import current_app, g, url_for
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api.deps import services
from api.oauth.adapters import Token
from core.db import db
from core.errors import AppError
from domain.oauth import tokens as oauth_tokens
from domain.oauth.clients import ASSERTION_ALGORITHMS

AUTHENTICATED = ["client_secret_basic", "private_key_jwt"]

log = logging.getLogger(__name__)


def find_token(token: str, hint: str | None) -> Token | None:
    """An access token (a JWT we signed) or a refresh token (a row), active or not."""
    svc = services()
    if token.startswith("ort_"):
        found = oauth_tokens.find_refresh(db.session(), token)
        if found is None:
            return None
        row, grant = found
        active = oauth_tokens.refresh_active(db.session(), svc.revocations, row, grant)
        claims = {
            "scope": row.scope, "sub": grant.account_id, "exp": int(row.expires_at.timestamp()),
            "iat": int(row.created_at.timestamp()), "token_type": "refresh_token",
        }  # fmt: skip
        return Token("refresh_token", grant.client_id, active=active, claims=claims, row=row)
    try:
        claims = svc.tokens.verify(token, audience=svc.oauth_policy.audience)
    except AppError:
        return None
    if claims.get("typ") not in (oauth_tokens.TYP_CITIZEN, oauth_tokens.TYP_CLIENT):
        return None  # a first-party token is none of a client's business
    sid, jti = claims.get("sid"), claims.get("jti")
    revoked = svc.revocations.is_revoked(sid, jti) if sid else svc.revocations.token_revoked(jti or "")
    return Token("access_token", claims.get("client_id", ""), active=not revoked, claims=claims)


def check_token_param(request: Any) -> None:
    """`token` is required; `token_type_hint` is only a hint. find_token looks for the token
    among every kind whatever the hint says, so an unknown hint is ignored (RFC 7009 §2.1, RFC
    7662 §2.1 let the server search all types), never refused as unsupported_token_type: that
    answer is a 401, which a client library takes for failed credentials."""
    if "token" not in request.form:
        raise InvalidRequestError()


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = [*AUTHENTICATED, "none"]

    def check_params(self, request: Any, client: Any) -> None:
        check_token_param(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: Token, request: Any) -> None:
        """A refresh token ends its whole family (and so the access tokens issued with it); an
        access token ends alone."""
        svc = services()
        session = db.session()
        if token.kind == "refresh_token":
            oauth_tokens.revoke_families(
                session, svc.revocations, [token.row.family_id], reason="client_revoked"
            )
            session.commit()
        elif token.claims.get("jti"):
            oauth_tokens.revoke_access_token(
                session, svc.revocations, jti=token.claims["jti"], expires_at=float(token.claims["exp"]),
                client_id=token.client_id, request_id=g.get("request_id"),
            )  # fmt: skip


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTHENTICATED

    def check_params(self, request: Any, client: Any) -> None:
        check_token_param(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: Token, client: Any, request: Any) -> bool:
        return token.client_id == client.get_client_id()  # a client sees only its own tokens

    def introspect_token(self, token: Token) -> dict[str, Any]:
        c = token.claims
        body = {
            "active": True, "client_id": token.client_id, "scope": c.get("scope"), "sub": c.get("sub"),
            "exp": c.get("exp"), "iat": c.get("iat"), "iss": services().tokens.issuer,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
        }  # fmt: skip
        if token.kind == "access_token":
            body |= {"aud": c.get("aud"), "jti": c.get("jti")}
        return {k: v for k, v in body.items() if v is not None}


# A client assertion is made for one request: minutes, not hours (RFC 7523 leaves it to us).
MAX_ASSERTION_SECONDS = 300


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=30)

    def get_audiences(self) -> list[str]:
        base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        return [services().tokens.issuer, base + url_for("oauth.token"), base + "/oauth/token"]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        """Authlib's, verifying with exactly the algorithms the metadata lists (joserfc's default
        set would refuse PS256 as "not recommended")."""
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(ASSERTION_ALGORITHMS))
        except JoseError as e:
            raise InvalidClientError(description=e.description) from e
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        """An assertion lives at most MAX_ASSERTION_SECONDS: one valid for hours, captured in a
        log or a proxy, would let its holder act as the app until then. Real time, as joserfc
        checks `exp` against it."""
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp - time.time() > MAX_ASSERTION_SECONDS + self.leeway:
            raise InvalidClientError(
                description=f"client assertion expires too far ahead (at most {MAX_ASSERTION_SECONDS} s)"
            )
        super().verify_claims(claims)

    def validate_jti(self, claims: dict, jti: str) -> bool:
        """Each assertion once (RFC 7523 §3 item 7): remembered for as long as it is valid."""
        from core.redis import get_redis

        ttl = max(60, int(claims.get("exp", 0)) - int(time.time()) + self.leeway + 60)
        return bool(get_redis().set(f"oauth:assertion:{claims['sub']}:{jti}", "1", nx=True, ex=ttl))

    def resolve_client_public_key(self, client: Any) -> KeySet:
        try:
            return KeySet.import_key_set(client.row.jwks or {"keys": []})
        except (JoseError, ValueError, TypeError, AttributeError, LookupError):
            # Registered before registration checked keys: the app cannot authenticate (401
            # invalid_client), and operators are told to correct its JWKS.
            log.error(
                "an app's registered JWKS cannot be read",
                extra={"client_id": client.row.id, "alert": "oauth.client_jwks_unreadable"},
            )
            return KeySet([])


class Issuer(IssuerParameter):
    def get_issuer(self) -> str:
        return services().tokens.issuer
