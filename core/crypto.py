"""Encryption of personal data at rest (SM4-GCM with key ids) and keyed lookup hashes (HMAC-SM3)."""

from __future__ import annotations

import base64
import hashlib
import hmac as std_hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_VERSION = "v1"


class DecryptionError(Exception):
    """Ciphertext could not be decrypted (unknown key id or tampered data)."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """Parse "kid:base64key,kid2:base64key" into {kid: key}; keys must be 16 bytes (SM4)."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, _, b64 = part.partition(":")
        key = base64.b64decode(b64)
        if len(key) != 16:
            raise ValueError(f"data key {kid!r} must be 16 bytes for SM4, got {len(key)}")
        keys[kid] = key
    return keys


class Encryptor:
    """SM4-GCM with a key ring: encrypts with the active key, decrypts with any known key.

    Format: "v1.<kid>.<base64url(nonce|ciphertext|tag)>"; the associated data binds the
    ciphertext to its purpose (e.g. "phone"), so a value cannot be moved to another column.
    """

    def __init__(self, keys: dict[str, bytes], active_kid: str) -> None:
        if active_kid not in keys:
            raise ValueError("active key id not in key ring")
        self._keys = keys
        self.active_kid = active_kid

    def encrypt(self, plaintext: str | bytes, *, purpose: str) -> str:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(12)
        enc = Cipher(algorithms.SM4(self._keys[self.active_kid]), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(purpose.encode())
        body = enc.update(data) + enc.finalize()
        blob = base64.urlsafe_b64encode(nonce + body + enc.tag).decode().rstrip("=")
        return f"{_VERSION}.{self.active_kid}.{blob}"

    def decrypt_bytes(self, token: str, *, purpose: str) -> bytes:
        try:
            version, kid, blob = token.split(".", 2)
            key = self._keys[kid]
        except (ValueError, KeyError) as exc:
            raise DecryptionError("unknown ciphertext format or key id") from exc
        if version != _VERSION:
            raise DecryptionError("unknown ciphertext version")
        raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        nonce, body, tag = raw[:12], raw[12:-16], raw[-16:]
        dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(purpose.encode())
        try:
            return dec.update(body) + dec.finalize()
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc

    def decrypt(self, token: str, *, purpose: str) -> str:
        return self.decrypt_bytes(token, purpose=purpose).decode()

    def key_id(self, token: str) -> str:
        """The key id a ciphertext was written with (for re-encryption after rotation)."""
        return token.split(".", 2)[1]

    def active_prefix(self) -> str:
        """How every ciphertext written under the active key begins (to find the others in SQL)."""
        return f"{_VERSION}.{self.active_kid}."


class LookupHasher:
    """HMAC-SM3 of a normalised value, so equal values can be found without storing them."""

    def __init__(self, key: str | bytes) -> None:
        self._key = key.encode() if isinstance(key, str) else key

    def hash(self, value: str, *, purpose: str) -> str:
        return self.hash_bytes(value.encode(), purpose=purpose)

    def hash_bytes(self, data: bytes, *, purpose: str) -> str:
        """The keyed hash of raw bytes (a request body): without the key it cannot be
        reversed by trying candidate values, as an unkeyed digest of an ID number could."""
        mac = hmac.HMAC(self._key, hashes.SM3())
        mac.update(purpose.encode() + b"\x00" + data)
        return mac.finalize().hex()


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy secret (refresh tokens, codes); no key needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)


def constant_time_equal(a: str, b: str) -> bool:
    return std_hmac.compare_digest(a.encode(), b.encode())


class CryptoHolder:
    """Process-wide encryptor and hasher, configured by the app factory."""

    encryptor: Encryptor
    hasher: LookupHasher

    def configure(self, data_keys: str, active_kid: str, lookup_key: str) -> None:
        self.encryptor = Encryptor(parse_keys(data_keys), active_kid)
        self.hasher = LookupHasher(lookup_key)

    def init_app(self, app: object) -> None:
        cfg = app.config  # type: ignore[attr-defined]
        self.configure(cfg["DATA_KEYS"], cfg["DATA_KEY_ACTIVE"], cfg["LOOKUP_HASH_KEY"])


crypto = CryptoHolder()
