"""Alipay open-platform RSA2 (SHA256withRSA) signing and verification, shared by client and simulator.

Requests: every parameter except `sign` and empty values, sorted by name, joined as `k=v` with
`&` (values raw, not URL-encoded), signed with the application's private key (PKCS#1 v1.5,
SHA-256), base64. Responses: `{"<method>_response": {...}, "sign": "..."}`, where `sign` covers
the exact JSON text of the `*_response` member as it appears in the body, so a verifier must cut
that text out of the body rather than re-serialise the parsed object (key order, spacing and
escapes would differ). Timestamps are "yyyy-MM-dd HH:mm:ss" in Beijing time.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BEIJING = timezone(timedelta(hours=8))
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
_PRIVATE_HEADER = "-----BEGIN PRIVATE KEY-----"
_PUBLIC_HEADER = "-----BEGIN PUBLIC KEY-----"


class RsaKeyError(ValueError):
    """A key that cannot be loaded (bad PEM, not RSA, too short)."""


def _wrap_pem(text: str, header: str) -> bytes:
    """PEM as given, or a bare base64 body (how the Alipay console shows keys) wrapped in `header`."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode("ascii")
    footer = header.replace("BEGIN", "END")
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([header, *lines, footer]).encode("ascii")


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key (PKCS#8 or PKCS#1 PEM, or a bare PKCS#8 base64 body), at least 2048 bits."""
    try:
        key = serialization.load_pem_private_key(_wrap_pem(pem, _PRIVATE_HEADER), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise RsaKeyError("the RSA private key cannot be loaded") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise RsaKeyError("RSA2 needs an RSA key of at least 2048 bits")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key (SubjectPublicKeyInfo PEM or a bare base64 body), at least 2048 bits."""
    try:
        key = serialization.load_pem_public_key(_wrap_pem(pem, _PUBLIC_HEADER))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise RsaKeyError("the RSA public key cannot be loaded") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise RsaKeyError("RSA2 needs an RSA key of at least 2048 bits")
    return key


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The PEM public key of a private key."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def signing_string(params: Mapping[str, str]) -> str:
    """Sorted `k=v&k=v` over every parameter except sign and empty values."""
    items = sorted((k, v) for k, v in params.items() if k != "sign" and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in items)


def sign(data: str, key: rsa.RSAPrivateKey) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) signature of the UTF-8 bytes of `data`."""
    raw = key.sign(data.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify(data: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    """Whether `signature` (base64) is a valid SHA256withRSA signature of `data` under `key`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, data.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> str:
    """The `sign` value of a request."""
    return sign(signing_string(params), key)


def verify_params(params: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    """Whether a request's `sign` covers its other parameters."""
    return verify(signing_string(params), params.get("sign") or "", key)


def format_timestamp(unix: float) -> str:
    """The `timestamp` parameter for a UNIX time: Beijing wall time, to the second."""
    return datetime.fromtimestamp(unix, tz=BEIJING).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> float:
    """UNIX time of a `timestamp` parameter; ValueError when malformed."""
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=BEIJING).timestamp()


def response_member(method: str) -> str:
    """alipay.user.certify.open.query → alipay_user_certify_open_query_response."""
    return method.replace(".", "_") + "_response"


def top_level_members(body: str) -> dict[str, tuple[str, object]]:
    """Each top-level member of a JSON object body: name → (exact value text, parsed value).

    Walks the object with the standard decoder so the text is cut exactly where the body has it
    (a member name that merely appears inside a string can never be mistaken for a member).
    Raises ValueError when the body is not one JSON object.
    """
    decoder = json.JSONDecoder()
    ws = " \t\n\r"

    def skip(i: int) -> int:
        while i < len(body) and body[i] in ws:
            i += 1
        return i

    i = skip(0)
    if i >= len(body) or body[i] != "{":
        raise ValueError("not a JSON object")
    members: dict[str, tuple[str, object]] = {}
    i = skip(i + 1)
    if i < len(body) and body[i] == "}":
        return members
    while True:
        name, i = decoder.raw_decode(body, i)
        i = skip(i)
        if not isinstance(name, str) or i >= len(body) or body[i] != ":":
            raise ValueError("malformed member")
        start = skip(i + 1)
        value, end = decoder.raw_decode(body, start)
        if name in members:  # a duplicate would let two texts claim one name: refuse
            raise ValueError("duplicate member")
        members[name] = (body[start:end], value)
        i = skip(end)
        if i < len(body) and body[i] == ",":
            i = skip(i + 1)
            continue
        if i < len(body) and body[i] == "}" and not body[i + 1 :].strip(ws):
            return members
        raise ValueError("malformed object")
