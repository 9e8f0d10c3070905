"""National cryptography (国密) primitives of the provincial platform protocol (docs/province.md).

- SM3 and HMAC-SM3 (lowercase hex), through `cryptography`.
- SM4 field encryption: base64(iv16 | SM4-CBC-PKCS7(utf-8 value)), random IV, through
  `cryptography`. CBC is not authenticated on its own: the request signature covers the body.
- SM2 signatures (GM/T 0003.2 / GM/T 0009): e = SM3(Z || M) with
  Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), signature r || s as 128 lowercase hex.
  The curve arithmetic is gmssl 3.2.2's (`CryptSM2.sign` / `CryptSM2.verify` on a ready digest);
  everything around it is done here because that release
    * hard-codes the user id 1234567812345678 in its Z value (`_sm3_z`) and recomputes Z on
      every call with a pure-Python SM3,
    * draws the per-signature secret k from `random.choice` (not a CSPRNG; a predictable k
      reveals the private key), so k comes from `secrets` here,
    * strips a public key with `lstrip("04")`, which also eats leading 0/4 digits of x,
    * checks neither that r, s lie in [1, n-1], that a public key is on the curve, nor the
      signature's format (a malformed one raises instead of failing).
  Public keys are accepted as x || y (128 hex) or 04 || x || y (130 hex) and kept as 128 hex.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets

from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl.sm2 import CryptSM2, default_ecc_table

DEFAULT_SM2_USER_ID = "1234567812345678"

_P = int(default_ecc_table["p"], 16)
_N = int(default_ecc_table["n"], 16)
_A = int(default_ecc_table["a"], 16)
_B = int(default_ecc_table["b"], 16)
_G = default_ecc_table["g"].lower()  # xG || yG, 128 hex

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX128 = re.compile(r"[0-9a-fA-F]{128}")
_HEX130 = re.compile(r"04[0-9a-fA-F]{128}")

# Point arithmetic only (no key material); gmssl's methods keep no state between calls.
_CURVE = CryptSM2(private_key=None, public_key="", mode=1)


# --- SM3 / HMAC-SM3 -------------------------------------------------------------------------


def sm3_hex(data: bytes) -> str:
    """Lowercase hex SM3 digest of `data`."""
    return _sm3(data).hex()


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def hmac_sm3_hex(secret: str | bytes, message: str | bytes) -> str:
    """Lowercase hex HMAC-SM3 of `message` (str values are UTF-8 encoded)."""
    mac = hmac.HMAC(_bytes(secret), hashes.SM3())
    mac.update(_bytes(message))
    return mac.finalize().hex()


# --- SM4 field encryption -------------------------------------------------------------------


class FieldDecryptError(ValueError):
    """An encrypted field is not base64, has the wrong length, bad padding or is not UTF-8."""


def sm4_key(key: str | bytes) -> bytes:
    """A 16-byte SM4 key from 32 hex characters or 16 raw bytes; ValueError otherwise."""
    if isinstance(key, str):
        text = key.strip()
        if not re.fullmatch(r"[0-9a-fA-F]{32}", text):
            raise ValueError("SM4 key must be 32 hex characters (16 bytes)")
        return bytes.fromhex(text)
    if isinstance(key, bytes | bytearray) and len(key) == 16:
        return bytes(key)
    raise ValueError("SM4 key must be 16 bytes (or 32 hex characters)")


def sm4_encrypt_field(key: bytes, value: str) -> str:
    """base64(iv16 | SM4-CBC-PKCS7(utf-8 value)) with a fresh random IV."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(value.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.SM4(sm4_key(key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(plain) + enc.finalize()).decode("ascii")


def sm4_decrypt_field(key: bytes, token: str) -> str:
    """The plain value of an encrypted field; FieldDecryptError if it cannot be one."""
    cipher_key = sm4_key(key)  # a bad key is a configuration error (ValueError), not a bad field
    if not isinstance(token, str | bytes):
        raise FieldDecryptError("encrypted field must be a string")
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise FieldDecryptError("encrypted field is not base64") from None
    if len(raw) < 32 or len(raw) % 16:
        raise FieldDecryptError("encrypted field has the wrong length")
    dec = Cipher(algorithms.SM4(cipher_key), modes.CBC(raw[:16])).decryptor()
    padded = dec.update(raw[16:]) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise FieldDecryptError("encrypted field has bad padding (wrong key?)") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise FieldDecryptError("encrypted field is not UTF-8 (wrong key?)") from None


# --- SM2 ------------------------------------------------------------------------------------


def normalise_sm2_public_key(public_key_hex: str) -> str:
    """x || y as 128 lowercase hex from 128 hex or 04 || x || y; ValueError unless on the curve."""
    if not isinstance(public_key_hex, str):
        raise ValueError("SM2 public key must be a hex string")
    text = public_key_hex.strip()
    if _HEX130.fullmatch(text):
        text = text[2:]  # by length, never lstrip: x may itself start with 0 or 4
    elif not _HEX128.fullmatch(text):
        raise ValueError("SM2 public key must be 128 hex characters (x||y) or 130 with a leading 04")
    x, y = int(text[:64], 16), int(text[64:], 16)
    if x >= _P or y >= _P or (y * y - (x * x * x + _A * x + _B)) % _P:
        raise ValueError("SM2 public key is not a point on the SM2 curve")
    return text.lower()


def _private_scalar(private_key_hex: str) -> int:
    if not isinstance(private_key_hex, str) or not _HEX64.fullmatch(private_key_hex.strip()):
        raise ValueError("SM2 private key must be 64 hex characters")
    d = int(private_key_hex.strip(), 16)
    if not 1 <= d <= _N - 2:
        raise ValueError("SM2 private key is out of range (must be in [1, n-2])")
    return d


def sm2_public_key(private_key_hex: str) -> str:
    """The public key (128 hex, x || y) of a private key."""
    return _CURVE._kg(_private_scalar(private_key_hex), _G)


def generate_sm2_keypair() -> tuple[str, str]:
    """A fresh key pair: (private key 64 hex, public key 128 hex x || y)."""
    d = secrets.randbelow(_N - 2) + 1  # [1, n-2]
    return f"{d:064x}", _CURVE._kg(d, _G)


def sm2_z(public_key_hex: str, user_id: str | bytes = DEFAULT_SM2_USER_ID) -> bytes:
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), 32 bytes."""
    uid = _bytes(user_id)
    if len(uid) * 8 > 0xFFFF:
        raise ValueError("SM2 user id is too long")
    public = normalise_sm2_public_key(public_key_hex)
    curve = (default_ecc_table["a"] + default_ecc_table["b"] + _G + public).lower()
    return _sm3((len(uid) * 8).to_bytes(2, "big") + uid + bytes.fromhex(curve))


class Sm2Signer:
    """SM2 with SM3 (Z from the public key and user id) for one key; thread-safe, reusable.

    Without a private key it only verifies. A private key must match the public key.
    """

    def __init__(
        self, private_key_hex: str | None, public_key_hex: str, user_id: str = DEFAULT_SM2_USER_ID
    ) -> None:
        self.public_key = normalise_sm2_public_key(public_key_hex)
        self.user_id = user_id
        self._z = sm2_z(self.public_key, user_id)
        private_hex = None
        if private_key_hex is not None:
            d = _private_scalar(private_key_hex)
            if _CURVE._kg(d, _G) != self.public_key:
                raise ValueError("SM2 private key does not belong to the public key")
            private_hex = f"{d:064x}"
        self._sm2 = CryptSM2(private_key=private_hex, public_key=self.public_key, mode=1)
        # gmssl's constructor may have stripped leading 0/4 digits (lstrip("04")): set it again.
        self._sm2.public_key = self.public_key

    @property
    def can_sign(self) -> bool:
        return self._sm2.private_key is not None

    def digest(self, message: bytes) -> bytes:
        """e = SM3(Z || M), the value the signature is computed on."""
        return _sm3(self._z + message)

    def sign(self, message: bytes) -> str:
        """r || s as 128 lowercase hex; ValueError without a private key."""
        if not self.can_sign:
            raise ValueError("this SM2 signer has no private key")
        e = self.digest(message)
        for _ in range(64):  # a retry needs r = 0, r + k = n or s = 0: probability ~2^-255
            k = secrets.randbelow(_N - 1) + 1
            signature = self._sm2.sign(e, f"{k:064x}")
            if signature is not None:
                return signature
        raise RuntimeError("SM2 signing failed repeatedly")  # pragma: no cover

    def verify(self, signature_hex: str, message: bytes) -> bool:
        """Whether `signature_hex` (r || s, 128 hex) signs `message`; False for anything malformed."""
        if not isinstance(signature_hex, str) or not _HEX128.fullmatch(signature_hex):
            return False
        if not isinstance(message, bytes | bytearray):
            return False
        r, s = int(signature_hex[:64], 16), int(signature_hex[64:], 16)
        if not (1 <= r < _N and 1 <= s < _N) or (r + s) % _N == 0:
            return False
        try:
            return bool(self._sm2.verify(f"{r:064x}{s:064x}", self.digest(bytes(message))))
        except (TypeError, ValueError):  # the point at infinity comes back from gmssl as None
            return False
