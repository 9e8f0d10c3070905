"""Operator credentials: argon2 password hashes, the password policy, and TOTP second factors."""

from __future__ import annotations

import hmac
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.crypto import Encryptor
from core.errors import Text
from domain.operators.errors import PasswordTooWeak

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128
TOTP_PURPOSE = "totp"  # associated data of the encrypted secret
TOTP_ISSUER = "yiwang"
TOTP_WINDOW = 1  # accept the previous and next 30-second step for clock drift

_hasher = PasswordHasher()


def check_password_policy(password: str, *, username: str) -> None:
    """Raise PasswordTooWeak unless the password is long enough and does not contain the username."""
    if (
        len(password) < PASSWORD_MIN_LENGTH
        or len(password) > PASSWORD_MAX_LENGTH
        or not password.strip()
        or (username and username.lower() in password.lower())
    ):
        raise PasswordTooWeak(
            fields={
                "password": [
                    Text(
                        f"at least {PASSWORD_MIN_LENGTH} characters, without the username",
                        f"至少 {PASSWORD_MIN_LENGTH} 个字符，且不能包含用户名",
                    )
                ]
            },
            min_length=PASSWORD_MIN_LENGTH,
        )


def hash_password(password: str) -> str:
    """An argon2id hash with the library's current parameters."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches; never raises for a wrong or malformed hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("yiwang-no-such-operator")


def burn_password_check(password: str) -> None:
    """Spend the time of one verification, so unknown usernames answer as slowly as known ones."""
    verify_password(_dummy_hash(), password)


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def encrypt_totp_secret(encryptor: Encryptor, secret: str) -> str:
    return encryptor.encrypt(secret, purpose=TOTP_PURPOSE)


def decrypt_totp_secret(encryptor: Encryptor, secret_enc: str) -> str:
    return encryptor.decrypt(secret_enc, purpose=TOTP_PURPOSE)


def provisioning_uri(secret: str, *, username: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def match_totp_step(secret: str, code: str, *, timestamp: float) -> int | None:
    """The 30-second step whose code equals `code` within the allowed window, else None."""
    code = (code or "").strip()
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(int(timestamp))
    matched = None
    # Compare every candidate so the timing does not reveal which step matched.
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched
