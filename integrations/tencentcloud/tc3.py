"""TC3-HMAC-SHA256, the signature of Tencent Cloud API 3.0: signing, and verifying as the gateway does.

Production clients sign through the official SDK. `sign_request` exists so tests can send what
the SDK never would (stale timestamps, another host, extra signed headers), and `verify_request`
is the server side shared by every Tencent Cloud simulator (SMS now, FaceID later).

The algorithm (https://cloud.tencent.com/document/api/213/30654):
    CanonicalRequest = Method \\n "/" \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n
                       hex(sha256(payload))
    CanonicalHeaders = "name:value\\n" for each signed header, name and value lowercased and trimmed
    StringToSign     = "TC3-HMAC-SHA256" \\n Timestamp \\n Date/service/tc3_request \\n
                       hex(sha256(CanonicalRequest))
    key              = HMAC(HMAC(HMAC("TC3" + SecretKey, Date), service), "tc3_request")
    Authorization    = "TC3-HMAC-SHA256 Credential=SecretId/Date/service/tc3_request,
                        SignedHeaders=content-type;host, Signature=hex(HMAC(key, StringToSign))"
Date is the UTC date of X-TC-Timestamp; GET requests sign the query string and an empty payload.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ALGORITHM = "TC3-HMAC-SHA256"
MAX_SKEW_SECONDS = 300  # the gateway refuses timestamps more than 5 minutes from its clock
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_REQUIRED_SIGNED = ("content-type", "host")
_AUTH = re.compile(
    r"^(?P<alg>\S+)\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)


class Tc3Error(Exception):
    """A request the Tencent Cloud gateway would refuse; `code` is the gateway's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VerifiedRequest:
    """What a correctly signed request claims about itself."""

    secret_id: str
    action: str
    version: str
    region: str | None
    timestamp: int


def utc_date(timestamp: int) -> str:
    """The credential-scope date: the UTC day of the timestamp (never local time)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def payload_hash(payload: bytes) -> str:
    """Lowercase hex SHA-256 of the request body."""
    return hashlib.sha256(payload).hexdigest()


def canonical_request(
    *,
    method: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    hashed_payload: str,
) -> str:
    """The canonical request; `headers` maps lowercase names to values."""
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed_headers)
    return "\n".join(
        [method.upper(), "/", query, canonical_headers, ";".join(signed_headers), hashed_payload]
    )


def signing_key(secret_key: str, date: str, service: str) -> bytes:
    """The derived key for one day and one service."""
    k_date = hmac.new(("TC3" + secret_key).encode(), date.encode(), hashlib.sha256).digest()
    k_service = hmac.new(k_date, service.encode(), hashlib.sha256).digest()
    return hmac.new(k_service, b"tc3_request", hashlib.sha256).digest()


def signature(secret_key: str, *, service: str, timestamp: int, date: str, canonical: str) -> str:
    """Hex signature of a canonical request."""
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join([ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()])
    return hmac.new(signing_key(secret_key, date, service), to_sign.encode(), hashlib.sha256).hexdigest()


def sign_request(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    action: str,
    version: str,
    body: bytes,
    region: str | None = None,
    timestamp: int | None = None,
    content_type: str = "application/json",
    method: str = "POST",
    query: str = "",
    extra_signed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers of a signed API 3.0 request (`host` includes the port when it is not the default)."""
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(ts),
    }
    if region:
        headers["X-TC-Region"] = region
    headers.update(extra_signed or {})
    lower = {k.lower(): v for k, v in headers.items()}
    signed = sorted({*_REQUIRED_SIGNED, *(k.lower() for k in (extra_signed or {}))})
    hashed = payload_hash(b"" if method.upper() == "GET" else body)
    canonical = canonical_request(
        method=method, query=query, headers=lower, signed_headers=signed, hashed_payload=hashed
    )
    date = utc_date(ts)
    sig = signature(secret_key, service=service, timestamp=ts, date=date, canonical=canonical)
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    return headers


def verify_request(
    *,
    method: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    service: str,
    secret_keys: Mapping[str, str],
    now: float,
    max_skew: int = MAX_SKEW_SECONDS,
) -> VerifiedRequest:
    """Check a request as the gateway does; raise Tc3Error with the gateway's code if it fails.

    `headers` may be any case-insensitive mapping (werkzeug Headers) or a dict; `secret_keys`
    maps the SecretIds the simulated account owns to their SecretKeys.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    for header, name in (
        ("x-tc-action", "Action"),
        ("x-tc-version", "Version"),
        ("x-tc-timestamp", "Timestamp"),
    ):
        if not lower.get(header):
            raise Tc3Error("MissingParameter", f"The request is missing a required parameter `{name}`.")
    raw_ts = lower["x-tc-timestamp"].strip()
    if not (raw_ts.isascii() and raw_ts.isdigit()):
        raise Tc3Error("InvalidParameterValue", "The value of parameter `Timestamp` is not a valid integer.")
    timestamp = int(raw_ts)
    if abs(now - timestamp) > max_skew:
        raise Tc3Error(
            "AuthFailure.SignatureExpire",
            "Signature expired. Timestamp comparison deviation is greater than 5 minutes.",
        )
    match = _AUTH.match(lower.get("authorization", ""))
    if match is None or match["alg"] != ALGORITHM:
        raise Tc3Error("AuthFailure.InvalidAuthorization", "Authorization header is missing or malformed.")
    cred_parts = match["cred"].split("/")
    if len(cred_parts) != 4 or cred_parts[3] != "tc3_request":
        raise Tc3Error("AuthFailure.InvalidAuthorization", "The Credential of Authorization is malformed.")
    secret_id = cred_parts[0]
    signed = match["signed"].lower().split(";")
    if any(h not in signed for h in _REQUIRED_SIGNED):
        raise Tc3Error(
            "AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host."
        )
    secret_key = secret_keys.get(secret_id)
    if secret_key is None:
        raise Tc3Error(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.",
        )
    if any(h not in lower for h in signed):
        raise Tc3Error("AuthFailure.SignatureFailure", "A signed header is missing from the request.")
    if method.upper() == "GET":
        hashed = payload_hash(b"")
    elif lower.get("x-tc-content-sha256") == UNSIGNED_PAYLOAD:
        hashed = payload_hash(UNSIGNED_PAYLOAD.encode())
    else:
        hashed = payload_hash(body)
    canonical = canonical_request(
        method=method,
        query=query if method.upper() == "GET" else "",
        headers=lower,
        signed_headers=signed,
        hashed_payload=hashed,
    )
    # The server derives the scope from its own service name and the timestamp's UTC date, so a
    # client that signs with local time or for another service fails here, as it would for real.
    expected = signature(
        secret_key, service=service, timestamp=timestamp, date=utc_date(timestamp), canonical=canonical
    )
    if not hmac.compare_digest(expected, match["sig"].lower()):
        raise Tc3Error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        )
    return VerifiedRequest(
        secret_id=secret_id,
        action=lower["x-tc-action"],
        version=lower["x-tc-version"],
        region=lower.get("x-tc-region") or None,
        timestamp=timestamp,
    )


def error_envelope(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    """The API 3.0 error body: {"Response": {"Error": {"Code", "Message"}, "RequestId"}}."""
    return {
        "Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id or new_request_id()}
    }


def new_request_id() -> str:
    """A RequestId in the gateway's format (a UUID)."""
    return str(uuid.uuid4())
