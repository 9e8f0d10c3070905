import pyotp
import pytest

from core.crypto import DecryptionError
from domain.operators import credentials
from domain.operators.errors import PasswordTooWeak


@pytest.mark.parametrize("password", ["short-pass1", "x" * 129, " " * 20, "my-alice-password-123"])
def test_password_policy_rejects_weak_passwords(password):
    with pytest.raises(PasswordTooWeak) as err:
        credentials.check_password_policy(password, username="alice")
    assert err.value.status == 422 and "password" in err.value.fields


def test_password_policy_accepts_twelve_characters():
    credentials.check_password_policy("twelve-chars", username="alice")


def test_password_hash_is_argon2id_and_verifies_only_the_right_password():
    hashed = credentials.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$") and "a long enough password" not in hashed
    assert credentials.verify_password(hashed, "a long enough password")
    assert not credentials.verify_password(hashed, "a long enough passworD")
    assert not credentials.verify_password("not-a-hash", "anything")


def test_totp_accepts_one_step_of_drift_either_way_and_no_more():
    secret = credentials.new_totp_secret()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_015.0
    current = totp.timecode(int(now))
    assert credentials.match_totp_step(secret, totp.at(now), timestamp=now) == current
    assert credentials.match_totp_step(secret, totp.at(now - 30), timestamp=now) == current - 1
    assert credentials.match_totp_step(secret, totp.at(now + 30), timestamp=now) == current + 1
    assert credentials.match_totp_step(secret, totp.at(now - 60), timestamp=now) is None
    assert credentials.match_totp_step(secret, totp.at(now + 60), timestamp=now) is None
    assert credentials.match_totp_step(secret, "12345", timestamp=now) is None
    assert credentials.match_totp_step(secret, "abcdef", timestamp=now) is None


def test_totp_secret_is_encrypted_for_its_purpose_only(services):
    secret = credentials.new_totp_secret()
    stored = credentials.encrypt_totp_secret(services.encryptor, secret)
    assert secret not in stored
    assert credentials.decrypt_totp_secret(services.encryptor, stored) == secret
    with pytest.raises(DecryptionError):
        services.encryptor.decrypt(stored, purpose="phone")


def test_provisioning_uri_names_issuer_and_user():
    secret = credentials.new_totp_secret()
    uri = credentials.provisioning_uri(secret, username="alice")
    assert uri.startswith("otpauth://totp/") and "alice" in uri and f"secret={secret}" in uri
    assert "issuer=yiwang" in uri
