"""The one token service: mints and verifies every ES256 JWT yiwang issues."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
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


class VerifiedTokenCache:
    """Claims of tokens this process has already verified, until they expire.

    A phone sends the same access token for up to 15 minutes; re-checking its ES256 signature on
    every request is the largest CPU cost of an authenticated request. The key is the exact token
    text, so only byte-identical tokens hit. Revocation is still checked on every request by the
    caller. Nothing depends on the cache: a miss just verifies again.
    """

    def __init__(self, max_entries: int = 20000) -> None:
        self._max = max_entries
        self._entries: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, token: str, audience: str) -> dict[str, Any] | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] != audience:
            return None
        claims = entry[1]
        return claims if claims["exp"] > clock.timestamp() else None

    def put(self, token: str, audience: str, claims: dict[str, Any]) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                now = clock.timestamp()
                self._entries = {k: v for k, v in self._entries.items() if v[1]["exp"] > now}
                if len(self._entries) >= self._max:  # all live: drop the oldest half
                    keep = list(self._entries.items())[self._max // 2 :]
                    self._entries = dict(keep)
            self._entries[token] = (audience, claims)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}


@dataclass
class TokenService:
    keyring: KeyRing
    issuer: str
    cache: VerifiedTokenCache = field(default_factory=VerifiedTokenCache)

    def mint(
        self,
        *,
        audience: str,
        subject: str,
        ttl: int,
        claims: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> str:
        """Sign a JWT for `audience` valid for `ttl` seconds (`headers`: e.g. RFC 9068's typ)."""
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
        return jwt.encode(
            payload, key.private_key, algorithm="ES256", headers={**(headers or {}), "kid": key.kid}
        )

    def verify(self, token: str, *, audience: str) -> dict[str, Any]:
        """Return the claims of a valid token for `audience`, else raise TokenInvalid/Expired."""
        cached = self.cache.get(token, audience)
        if cached is not None:
            return dict(cached)
        claims = self._verify(token, audience=audience)
        self.cache.put(token, audience, claims)
        return dict(claims)

    def _verify(self, token: str, *, audience: str) -> dict[str, Any]:
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
