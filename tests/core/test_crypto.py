"""SM4-GCM encryption with key ids and HMAC-SM3 lookup hashes."""

from __future__ import annotations

import os

import pytest

from core.crypto import DecryptionError, Encryptor, LookupHasher


def test_round_trip_and_key_rotation():
    old, new = os.urandom(16), os.urandom(16)
    enc_old = Encryptor({"k1": old}, "k1")
    token = enc_old.encrypt("13812345678", purpose="phone")
    assert "13812345678" not in token and token.startswith("v1.k1.")
    rotated = Encryptor({"k1": old, "k2": new}, "k2")
    assert rotated.decrypt(token, purpose="phone") == "13812345678"  # old data still readable
    assert rotated.key_id(rotated.encrypt("x", purpose="phone")) == "k2"
    assert enc_old.encrypt("same", purpose="phone") != enc_old.encrypt("same", purpose="phone")


def test_tampering_wrong_purpose_and_unknown_key_fail():
    enc = Encryptor({"k1": os.urandom(16)}, "k1")
    token = enc.encrypt("secret", purpose="phone")
    with pytest.raises(DecryptionError):
        enc.decrypt(token, purpose="id-number")
    with pytest.raises(DecryptionError):
        enc.decrypt(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], purpose="phone")
    with pytest.raises(DecryptionError):
        Encryptor({"k9": os.urandom(16)}, "k9").decrypt(token, purpose="phone")


def test_lookup_hash_is_keyed_and_purpose_bound():
    a, b = LookupHasher("key-a"), LookupHasher("key-b")
    assert a.hash("13812345678", purpose="phone") == a.hash("13812345678", purpose="phone")
    assert a.hash("13812345678", purpose="phone") != b.hash("13812345678", purpose="phone")
    assert a.hash("13812345678", purpose="phone") != a.hash("13812345678", purpose="otp")
