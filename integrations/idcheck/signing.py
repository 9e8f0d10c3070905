"""The two-element check protocol's cryptography, shared by the client and the simulator.

- Requests and responses are signed with HMAC-SM3(app_secret, canonical string), lowercase hex:
  request  "POST\\n/v1/verify/two-factor\\n<timestamp>\\n<nonce>\\n<sha256 hex of body>";
  response "<HTTP status>\\n<timestamp>\\n<nonce>\\n<sha256 hex of body>".
- The name and ID number travel SM4-GCM encrypted inside the body ("payload"):
  base64(nonce12 | ciphertext | tag16) of the JSON {"name", "id_number"}, key = the first 16
  bytes of HMAC-SM3(app_secret, "idcheck-payload-key-v1"), associated data = request_id, so a
  payload cannot be moved into another request.
See docs/integrations/idcheck.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac as std_hmac
import json
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

VERIFY_PATH = "/v1/verify/two-factor"
TIMESTAMP_WINDOW = 300  # seconds either side of the receiver's clock
MIN_NONCE_LENGTH = 16
MAX_NONCE_LENGTH = 64
PAYLOAD_KEY_LABEL = b"idcheck-payload-key-v1"

H_APP_ID = "X-App-Id"
H_TIMESTAMP = "X-Timestamp"
H_NONCE = "X-Nonce"
H_SIGNATURE = "X-Signature"


class PayloadError(Exception):
    """The payload is not valid base64, fails authentication, or is not the expected JSON."""


def _secret(app_secret: str | bytes) -> bytes:
    return app_secret.encode() if isinstance(app_secret, str) else app_secret


def hmac_sm3_hex(app_secret: str | bytes, message: str | bytes) -> str:
    """Lowercase hex HMAC-SM3 of `message`."""
    mac = hmac.HMAC(_secret(app_secret), hashes.SM3())
    mac.update(message.encode() if isinstance(message, str) else message)
    return mac.finalize().hex()


def body_hash(body: bytes) -> str:
    """Lowercase hex SHA-256 of the exact body bytes."""
    return hashlib.sha256(body).hexdigest()


def canonical_request(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The string a request signature covers."""
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{body_hash(body)}"


def canonical_response(status: int, timestamp: str, nonce: str, body: bytes) -> str:
    """The string a response signature covers."""
    return f"{int(status)}\n{timestamp}\n{nonce}\n{body_hash(body)}"


def new_nonce() -> str:
    """A fresh 32-character hex nonce (single use within the timestamp window)."""
    return secrets.token_hex(16)


def signatures_equal(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing signature never matches."""
    return given is not None and std_hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def request_headers(
    app_id: str, app_secret: str | bytes, body: bytes, *, timestamp: int, nonce: str | None = None
) -> dict[str, str]:
    """The four authentication headers of a verify request."""
    nonce = nonce or new_nonce()
    ts = str(int(timestamp))
    signature = hmac_sm3_hex(app_secret, canonical_request("POST", VERIFY_PATH, ts, nonce, body))
    return {H_APP_ID: app_id, H_TIMESTAMP: ts, H_NONCE: nonce, H_SIGNATURE: signature}


def response_headers(app_secret: str | bytes, status: int, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The signature headers of a response."""
    nonce = new_nonce()
    ts = str(int(timestamp))
    signature = hmac_sm3_hex(app_secret, canonical_response(status, ts, nonce, body))
    return {H_TIMESTAMP: ts, H_NONCE: nonce, H_SIGNATURE: signature}


def response_signature_ok(app_secret: str | bytes, status: int, headers: Any, body: bytes) -> bool:
    """Whether a response carries a valid signature (`headers`: any case-insensitive mapping)."""
    ts, nonce, given = headers.get(H_TIMESTAMP), headers.get(H_NONCE), headers.get(H_SIGNATURE)
    if not ts or not nonce or not given:
        return False
    return signatures_equal(hmac_sm3_hex(app_secret, canonical_response(status, ts, nonce, body)), given)


def payload_key(app_secret: str | bytes) -> bytes:
    """The SM4 key of the payload: the first 16 bytes of HMAC-SM3(app_secret, label)."""
    mac = hmac.HMAC(_secret(app_secret), hashes.SM3())
    mac.update(PAYLOAD_KEY_LABEL)
    return mac.finalize()[:16]


def encrypt_payload(app_secret: str | bytes, request_id: str, name: str, id_number: str) -> str:
    """base64(nonce12 | SM4-GCM(JSON {name, id_number}) | tag), bound to request_id."""
    plain = json.dumps({"name": name, "id_number": id_number}, ensure_ascii=False).encode()
    nonce = os.urandom(12)
    enc = Cipher(algorithms.SM4(payload_key(app_secret)), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(request_id.encode())
    body = enc.update(plain) + enc.finalize()
    return base64.b64encode(nonce + body + enc.tag).decode("ascii")


def decrypt_payload(app_secret: str | bytes, request_id: str, payload: str) -> dict[str, Any]:
    """The decrypted {name, id_number} object; PayloadError if anything is wrong."""
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError("payload is not base64") from exc
    if len(raw) < 12 + 16 + 1:
        raise PayloadError("payload too short")
    nonce, body, tag = raw[:12], raw[12:-16], raw[-16:]
    dec = Cipher(algorithms.SM4(payload_key(app_secret)), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(request_id.encode())
    try:
        plain = dec.update(body) + dec.finalize()
    except InvalidTag as exc:
        raise PayloadError("payload failed authentication") from exc
    try:
        obj = json.loads(plain)
    except ValueError as exc:
        raise PayloadError("payload is not JSON") from exc
    if not isinstance(obj, dict):
        raise PayloadError("payload is not a JSON object")
    return obj
