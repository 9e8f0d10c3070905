"""The one token service: mints and verifies every ES256 JWT yiwang issues."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from core import clock
from core.errors import AppError
from core.signing_keys import KeyRing


class TokenInvalid(AppError):
    status = 401
    code = "auth.token_invalid"
    message_zh = "登录凭证无效，请重新登录"
    message_en = "The access token is invalid; please log in again"


class TokenExpired(AppError):
    status = 401
    code = "auth.token_expired"
    message_zh = "登录已过期，请刷新或重新登录"
    message_en = "The access token has expired; refresh it or log in again"


@dataclass
class TokenService:
    keyring: KeyRing
    issuer: str

    def mint(self, *, audience: str, subject: str, ttl: int, claims: dict[str, Any]) -> str:
        """Sign a JWT for `audience` valid for `ttl` seconds."""
        key = self.keyring.signing_key()
        now = int(clock.timestamp())
        payload = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(payload, key.private_key, algorithm="ES256", headers={"kid": key.kid})

    def verify(self, token: str, *, audience: str) -> dict[str, Any]:
        """Return the claims of a valid token for `audience`, else raise TokenInvalid/Expired."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalid() from exc
        if header.get("alg") != "ES256" or not isinstance(header.get("kid"), str):
            raise TokenInvalid()
        key = self.keyring.verification_key(header["kid"])
        if key is None:
            raise TokenInvalid()
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["ES256"],
                audience=audience,
                issuer=self.issuer,
                # Time claims are checked below against the project clock (tests move it).
                options={
                    "require": ["exp", "iat", "sub", "aud", "iss"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalid() from exc
        now = clock.timestamp()
        if not isinstance(claims["exp"], int | float) or claims["exp"] <= now:
            raise TokenExpired()
        if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > now + 30:
            raise TokenInvalid()
        return claims
