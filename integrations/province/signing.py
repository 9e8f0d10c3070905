"""The provincial platform's signature headers (docs/province.md, "Signing"), both directions.

Every request and response carries X-App-Id, X-Timestamp, X-Nonce, X-Signature-Method and
X-Signature over
  request  "<METHOD>\\n<PATH>\\n<TIMESTAMP>\\n<NONCE>\\n<SM3 hex of body>"
  response "<HTTP status>\\n<TIMESTAMP>\\n<NONCE>\\n<SM3 hex of body>"
with SM3-HMAC (shared secret, lowercase hex) or SM2 (r || s, 128 hex; each side signs with its own
key and verifies the other side's public key).

A receiver checks, in this order, and raises SignatureError with the code of the first failure:
headers present and well formed ("malformed"), the signature ("bad_signature"), the timestamp
within TIMESTAMP_WINDOW seconds of its clock ("stale_timestamp"), the nonce not seen before
("replayed_nonce"). The nonce is recorded only once everything else holds, so a forgery cannot
use up a nonce. Configuration mistakes (no secret, no key, a malformed key) raise ValueError.
"""

from __future__ import annotations

import hmac as std_hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from integrations.province.gm import DEFAULT_SM2_USER_ID, Sm2Signer, hmac_sm3_hex, sm2_public_key, sm3_hex

H_APP_ID = "X-App-Id"
H_TIMESTAMP = "X-Timestamp"
H_NONCE = "X-Nonce"
H_METHOD = "X-Signature-Method"
H_SIGNATURE = "X-Signature"

ALG_HMAC = "SM3-HMAC"
ALG_SM2 = "SM2"
ALGORITHMS = (ALG_HMAC, ALG_SM2)
HEADERS = (H_APP_ID, H_TIMESTAMP, H_NONCE, H_METHOD, H_SIGNATURE)

TIMESTAMP_WINDOW = 300  # seconds either side of the receiver's clock
# A nonce must be remembered as long as its timestamp can still pass: at most two windows.
NONCE_TTL = 2 * TIMESTAMP_WINDOW

_NONCE = re.compile(r"[0-9a-f]{32}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """A request or response that fails authentication; `code` says which check failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """One side's view: `secret` for SM3-HMAC; for SM2 its own key pair and the peer's public key."""

    alg: str
    app_id: str
    secret: str = field(default="", repr=False)
    own_private_key: str | None = field(default=None, repr=False)
    own_public_key: str | None = None
    peer_public_key: str | None = None
    user_id: str = DEFAULT_SM2_USER_ID


def canonical_request(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The string a request signature covers."""
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{sm3_hex(body)}"


def canonical_response(status: int, timestamp: str, nonce: str, body: bytes) -> str:
    """The string a response signature covers."""
    return f"{int(status)}\n{timestamp}\n{nonce}\n{sm3_hex(body)}"


def new_nonce() -> str:
    """A fresh nonce: 32 lowercase hex characters."""
    return secrets.token_hex(16)


# --- keys -----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _sm2(private_key: str | None, public_key: str, user_id: str) -> Sm2Signer:
    return Sm2Signer(private_key, public_key, user_id)


@lru_cache(maxsize=16)
def _derived_public(private_key: str) -> str:
    return sm2_public_key(private_key)


def _check_alg(creds: Credentials) -> None:
    if creds.alg not in ALGORITHMS:
        raise ValueError(f"unknown signature method {creds.alg!r} (expected SM3-HMAC or SM2)")
    if creds.alg == ALG_HMAC and not creds.secret:
        raise ValueError("SM3-HMAC signing needs a shared secret")


def _own_signer(creds: Credentials) -> Sm2Signer:
    if not creds.own_private_key:
        raise ValueError("SM2 signing needs own_private_key")
    public = creds.own_public_key or _derived_public(creds.own_private_key)
    return _sm2(creds.own_private_key, public, creds.user_id)


def _peer_verifier(creds: Credentials) -> Sm2Signer:
    if not creds.peer_public_key:
        raise ValueError("SM2 verification needs peer_public_key")
    return _sm2(None, creds.peer_public_key, creds.user_id)


def _sign(creds: Credentials, canonical: str) -> str:
    _check_alg(creds)
    if creds.alg == ALG_HMAC:
        return hmac_sm3_hex(creds.secret, canonical)
    return _own_signer(creds).sign(canonical.encode("utf-8"))


def _signature_ok(creds: Credentials, canonical: str, signature: str) -> bool:
    if creds.alg == ALG_HMAC:
        expected = hmac_sm3_hex(creds.secret, canonical)
        return std_hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))
    return _peer_verifier(creds).verify(signature, canonical.encode("utf-8"))


# --- signing --------------------------------------------------------------------------------


def _headers(creds: Credentials, timestamp: str, nonce: str, signature: str) -> dict[str, str]:
    return {
        H_APP_ID: creds.app_id,
        H_TIMESTAMP: timestamp,
        H_NONCE: nonce,
        H_METHOD: creds.alg,
        H_SIGNATURE: signature,
    }


def _timestamp(now: float | None) -> str:
    return str(int(time.time() if now is None else now))


def sign_request(
    creds: Credentials, method: str, path: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """The five signature headers of a request (`now`: unix seconds, default the clock)."""
    ts, nonce = _timestamp(now), new_nonce()
    return _headers(creds, ts, nonce, _sign(creds, canonical_request(method, path, ts, nonce, body)))


def sign_response(
    creds: Credentials, status: int, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """The five signature headers of a response."""
    ts, nonce = _timestamp(now), new_nonce()
    return _headers(creds, ts, nonce, _sign(creds, canonical_response(status, ts, nonce, body)))


# --- verification ---------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, looked up case-insensitively in any mapping (werkzeug, httpx, dict)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                value = candidate
                break
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value.strip() if isinstance(value, str) else None


def _parsed(creds: Credentials, headers: Mapping[str, str]) -> tuple[str, str, str]:
    """(timestamp, nonce, signature) from well-formed headers; SignatureError("malformed") if not."""
    _check_alg(creds)
    values = {name: _header(headers, name) for name in HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise SignatureError("malformed", f"missing header(s): {', '.join(missing)}")
    ts, nonce, signature = str(values[H_TIMESTAMP]), str(values[H_NONCE]), str(values[H_SIGNATURE])
    if not _TIMESTAMP.fullmatch(ts):
        raise SignatureError("malformed", f"{H_TIMESTAMP} must be unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise SignatureError("malformed", f"{H_NONCE} must be 32 lowercase hex characters")
    if values[H_METHOD] != creds.alg:
        raise SignatureError("malformed", f"{H_METHOD} must be {creds.alg}")
    if values[H_APP_ID] != creds.app_id:
        raise SignatureError("malformed", f"unknown {H_APP_ID}")
    return ts, nonce, signature


def _check(
    creds: Credentials, canonical: str, ts: str, nonce: str, signature: str, now: float,
    nonce_seen: Callable[[str, int], bool] | None,
) -> None:  # fmt: skip
    if not _signature_ok(creds, canonical, signature):
        raise SignatureError("bad_signature", "signature does not verify")
    if abs(int(ts) - now) > TIMESTAMP_WINDOW:
        raise SignatureError("stale_timestamp", f"timestamp more than {TIMESTAMP_WINDOW} s from the clock")
    if nonce_seen is not None and nonce_seen(nonce, NONCE_TTL):
        raise SignatureError("replayed_nonce", "nonce already used")


def verify_request(
    creds: Credentials, method: str, path: str, headers: Mapping[str, str], body: bytes, *,
    now: float, nonce_seen: Callable[[str, int], bool] | None,
) -> None:  # fmt: skip
    """Raise SignatureError unless the request is signed, fresh and not a replay.

    `nonce_seen(nonce, ttl_seconds)` records the nonce and says whether it had been seen already;
    None when the caller records the nonce itself once this check has passed (and refuses a
    replay there), e.g. in the same statement as what the request changes.
    """
    ts, nonce, signature = _parsed(creds, headers)
    _check(creds, canonical_request(method, path, ts, nonce, body), ts, nonce, signature, now, nonce_seen)


def verify_response(
    creds: Credentials, status: int, headers: Mapping[str, str], body: bytes, *,
    now: float, nonce_seen: Callable[[str, int], bool] | None = None,
) -> None:  # fmt: skip
    """Raise SignatureError unless the response is signed and fresh (and, given `nonce_seen`, new)."""
    ts, nonce, signature = _parsed(creds, headers)
    _check(creds, canonical_response(status, ts, nonce, body), ts, nonce, signature, now, nonce_seen)


class MemoryNonceStore:
    """Nonces seen within their time to live, in this process only (simulator, tests, fallback)."""

    SWEEP_EVERY = 60.0  # seconds between purges of expired entries

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._next_sweep = clock() + self.SWEEP_EVERY

    def seen(self, nonce: str, ttl: int) -> bool:
        """Record `nonce` for `ttl` seconds; True if it was already recorded and not expired."""
        with self._lock:
            now = self._clock()
            if now >= self._next_sweep:
                self._expiry = {n: t for n, t in self._expiry.items() if t > now}
                self._next_sweep = now + self.SWEEP_EVERY
            expiry = self._expiry.get(nonce)
            if expiry is not None and expiry > now:
                return True
            self._expiry[nonce] = now + max(1, ttl)
            return False

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)
