"""SM3, HMAC-SM3, SM4 field encryption and SM2 signatures (integrations/province/gm.py).

Cross-checks use independent code: gmssl's pure-Python SM3/SM4, affine curve arithmetic written
here, and (when the system's OpenSSL has SM2) the openssl command line.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm3 as gmssl_sm3
from gmssl import sm4 as gmssl_sm4
from gmssl.sm2 import CryptSM2

from integrations.province import gm
from integrations.province.gm import FieldDecryptError, Sm2Signer

KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")  # the SM4 standard's example key
MESSAGE = b"POST\n/gov/v1/intake\n1764724500\n0123456789abcdef0123456789abcdef\n" + b"e" * 64

# SM2 recommended curve (GB/T 32918.5), written out here rather than taken from gmssl.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0


@pytest.fixture(scope="module")
def pair() -> tuple[str, str]:
    return gm.generate_sm2_keypair()


@pytest.fixture(scope="module")
def signer(pair: tuple[str, str]) -> Sm2Signer:
    return Sm2Signer(*pair)


# --- independent helpers ----------------------------------------------------------------------


def gmssl_sm3_hex(data: bytes) -> str:
    return gmssl_sm3.sm3_hash(list(data))


def ec_add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def ec_mul(k: int, point: tuple[int, int]) -> tuple[int, int] | None:
    result, addend = None, point
    while k:
        if k & 1:
            result = ec_add(result, addend)
        addend = ec_add(addend, addend)
        k >>= 1
    return result


def point(public_hex: str) -> tuple[int, int]:
    return int(public_hex[:64], 16), int(public_hex[64:], 16)


def reference_e(public_hex: str, user_id: bytes, message: bytes) -> int:
    """e = SM3(SM3(ENTL || ID || a || b || xG || yG || xA || yA) || M), with gmssl's SM3."""
    xa, ya = point(public_hex)
    fields = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY, xa, ya))
    z = bytes.fromhex(gmssl_sm3_hex((len(user_id) * 8).to_bytes(2, "big") + user_id + fields))
    return int(gmssl_sm3_hex(z + message), 16)


def reference_verify(public_hex: str, user_id: bytes, message: bytes, signature: str) -> bool:
    r, s = int(signature[:64], 16), int(signature[64:], 16)
    if not (1 <= r < N and 1 <= s < N) or (r + s) % N == 0:
        return False
    sum_point = ec_add(ec_mul(s, (GX, GY)), ec_mul((r + s) % N, point(public_hex)))
    return sum_point is not None and (reference_e(public_hex, user_id, message) + sum_point[0]) % N == r


def reference_sign(private_hex: str, public_hex: str, user_id: bytes, message: bytes) -> str:
    d, e = int(private_hex, 16), reference_e(public_hex, user_id, message)
    k = int.from_bytes(os.urandom(32), "big") % (N - 1) + 1
    x1 = ec_mul(k, (GX, GY))[0]  # type: ignore[index]
    r = (e + x1) % N
    s = pow(1 + d, -1, N) * (k - r * d) % N
    return f"{r:064x}{s:064x}"


# --- SM3 / HMAC-SM3 ---------------------------------------------------------------------------


def test_sm3_standard_vector() -> None:
    assert gm.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert gm.sm3_hex(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    assert gm.sm3_hex(b"") == gmssl_sm3_hex(b"")


def test_hmac_sm3_matches_rfc2104_over_gmssl_sm3() -> None:
    for secret, message in ((b"key", b"The quick brown fox"), (b"k" * 100, b""), ("密钥", "消息")):
        key = secret.encode() if isinstance(secret, str) else secret
        msg = message.encode() if isinstance(message, str) else message
        if len(key) > 64:
            key = bytes.fromhex(gmssl_sm3_hex(key))
        key = key.ljust(64, b"\0")
        inner = bytes.fromhex(gmssl_sm3_hex(bytes(b ^ 0x36 for b in key) + msg))
        expected = gmssl_sm3_hex(bytes(b ^ 0x5C for b in key) + inner)
        assert gm.hmac_sm3_hex(secret, message) == expected
    assert gm.hmac_sm3_hex("secret", "message") == gm.hmac_sm3_hex(b"secret", b"message")


# --- SM4 --------------------------------------------------------------------------------------


def test_sm4_key_accepts_hex_or_16_bytes_only() -> None:
    assert gm.sm4_key(KEY.hex()) == KEY == gm.sm4_key(KEY) == gm.sm4_key(KEY.hex().upper())
    for bad in ("", "00" * 15, "00" * 17, "zz" * 16, b"\0" * 15, b"\0" * 32, KEY.hex().encode()):
        with pytest.raises(ValueError, match="SM4 key"):
            gm.sm4_key(bad)


@pytest.mark.parametrize("value", ["", "张三", "110101199003074578", "13800138000", "x" * 16, "é" * 100])
def test_sm4_field_round_trip_and_format(value: str) -> None:
    token = gm.sm4_encrypt_field(KEY, value)
    raw = base64.b64decode(token, validate=True)
    assert len(raw) == 16 + (len(value.encode()) // 16 + 1) * 16
    assert gm.sm4_decrypt_field(KEY, token) == value
    assert gm.sm4_encrypt_field(KEY, value) != token  # fresh IV each time


def test_sm4_field_interoperates_with_gmssl_sm4() -> None:
    value = "110101199003074578 张三"
    token = gm.sm4_encrypt_field(KEY, value)
    raw = base64.b64decode(token)
    theirs = gmssl_sm4.CryptSM4()
    theirs.set_key(KEY, gmssl_sm4.SM4_DECRYPT)
    assert theirs.crypt_cbc(raw[:16], raw[16:]).decode() == value

    iv = os.urandom(16)
    theirs = gmssl_sm4.CryptSM4()
    theirs.set_key(KEY, gmssl_sm4.SM4_ENCRYPT)
    token = base64.b64encode(iv + theirs.crypt_cbc(iv, value.encode())).decode()
    assert gm.sm4_decrypt_field(KEY, token) == value


def _raw_cbc(plain_padded: bytes, key: bytes = KEY) -> str:
    iv = bytes(range(16))  # fixed: the token names the test, which every pytest-xdist worker must see alike
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(plain_padded) + enc.finalize()).decode()


@pytest.mark.parametrize(
    "token, reason",
    [
        ("not base64!", "not base64"),
        ("令牌", "not base64"),
        ("QUJD\n", "not base64"),
        ("", "wrong length"),
        (base64.b64encode(b"\0" * 16).decode(), "wrong length"),
        (base64.b64encode(b"\0" * 40).decode(), "wrong length"),
        (_raw_cbc(b"a" * 15 + b"\x00"), "bad padding"),
        (_raw_cbc(b"a" * 14 + b"\x03\x03"), "bad padding"),
        (_raw_cbc(b"\xff\xfe" + b"\x0e" * 14), "not UTF-8"),
    ],
)
def test_sm4_decrypt_refuses_bad_tokens(token: str, reason: str) -> None:
    with pytest.raises(FieldDecryptError, match=reason) as info:
        gm.sm4_decrypt_field(KEY, token)
    assert isinstance(info.value, ValueError)


def test_sm4_decrypt_with_the_wrong_key_fails_or_differs() -> None:
    token = gm.sm4_encrypt_field(KEY, "110101199003074578")
    other = bytes(16)
    try:
        assert gm.sm4_decrypt_field(other, token) != "110101199003074578"
    except FieldDecryptError:
        pass


# --- SM2 keys -----------------------------------------------------------------------------------


def test_generated_keypair_format_and_consistency(pair: tuple[str, str]) -> None:
    private, public = pair
    assert len(private) == 64 and len(public) == 128
    assert private == private.lower() and public == public.lower()
    assert ec_mul(int(private, 16), (GX, GY)) == point(public)
    assert gm.sm2_public_key(private) == public


def test_public_key_forms(pair: tuple[str, str]) -> None:
    private, public = pair
    for form in (public, "04" + public, public.upper(), "04" + public.upper(), f"  {public}\n"):
        assert Sm2Signer(None, form).public_key == public
    assert Sm2Signer(private, "04" + public).verify(Sm2Signer(private, public).sign(b"m"), b"m")


@pytest.mark.parametrize(
    "bad, message",
    [
        ("", "128 hex"),
        ("00" * 63, "128 hex"),
        ("05" + "00" * 64, "128 hex"),
        ("zz" * 64, "128 hex"),
        ("0x" + "00" * 63, "128 hex"),
        ("00" * 64, "not a point"),
        ("ff" * 64, "not a point"),
    ],
)
def test_bad_public_keys_are_refused(bad: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sm2Signer(None, bad)


def test_public_key_off_the_curve_is_refused(pair: tuple[str, str]) -> None:
    public = pair[1]
    y = (int(public[64:], 16) + 1) % P
    with pytest.raises(ValueError, match="not a point"):
        Sm2Signer(None, public[:64] + f"{y:064x}")


@pytest.mark.parametrize(
    "bad, message",
    [
        ("", "64 hex"),
        ("01", "64 hex"),
        ("g" * 64, "64 hex"),
        ("00" * 32, "out of range"),
        (f"{N - 1:064x}", "out of range"),
        (f"{N:064x}", "out of range"),
        ("ff" * 32, "out of range"),
    ],
)
def test_bad_private_keys_are_refused(pair: tuple[str, str], bad: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sm2Signer(bad, pair[1])


def test_private_key_must_match_public_key(pair: tuple[str, str]) -> None:
    other_private, _ = gm.generate_sm2_keypair()
    with pytest.raises(ValueError, match="does not belong"):
        Sm2Signer(other_private, pair[1])


def test_verify_only_signer_cannot_sign(pair: tuple[str, str]) -> None:
    verifier = Sm2Signer(None, pair[1])
    assert not verifier.can_sign
    with pytest.raises(ValueError, match="no private key"):
        verifier.sign(b"m")


def _keypair_starting_with(prefix: str) -> tuple[str, str]:
    """Walk d, d+1, ... from a random gm key (one point addition a step) to a matching public key."""
    private, public = gm.generate_sm2_keypair()
    d, q = int(private, 16), point(public)
    for _ in range(50_000):
        if q is not None and f"{q[0]:064x}".startswith(prefix) and 1 <= d <= N - 2:
            return f"{d:064x}", f"{q[0]:064x}{q[1]:064x}"
        d, q = d + 1, ec_add(q, (GX, GY))
    raise AssertionError(f"no public key starting with {prefix}")


@pytest.mark.parametrize("prefix", ["0", "4", "04", "00"])
def test_public_keys_starting_with_0_or_4(prefix: str) -> None:
    """gmssl's lstrip("04") would eat these digits; both key forms must still work."""
    private, public = _keypair_starting_with(prefix)
    assert gm.sm2_public_key(private) == public
    for form in (public, "04" + public):
        signer = Sm2Signer(private, form)
        assert signer.public_key == public and signer._sm2.public_key == public
        signature = signer.sign(MESSAGE)
        assert Sm2Signer(None, form).verify(signature, MESSAGE)
        assert reference_verify(public, gm.DEFAULT_SM2_USER_ID.encode(), MESSAGE, signature)


# --- SM2 signatures ------------------------------------------------------------------------------


def test_sign_verify_round_trip(signer: Sm2Signer, pair: tuple[str, str]) -> None:
    signature = signer.sign(MESSAGE)
    assert len(signature) == 128 and signature == signature.lower()
    assert signer.verify(signature, MESSAGE)
    assert Sm2Signer(None, pair[1]).verify(signature, MESSAGE)
    assert signer.sign(MESSAGE) != signature  # fresh k each time
    assert signer.verify(signature.upper(), MESSAGE)


def test_user_id_is_part_of_the_signature(pair: tuple[str, str]) -> None:
    alice = Sm2Signer(pair[0], pair[1], user_id="ALICE123@YAHOO.COM")
    signature = alice.sign(MESSAGE)
    assert alice.verify(signature, MESSAGE)
    assert not Sm2Signer(None, pair[1]).verify(signature, MESSAGE)  # default user id
    assert not Sm2Signer(None, pair[1], user_id="ALICE123@YAHOO.CO").verify(signature, MESSAGE)
    assert reference_verify(pair[1], b"ALICE123@YAHOO.COM", MESSAGE, signature)


def test_tampered_message_or_signature_or_other_key_fails(signer: Sm2Signer) -> None:
    signature = signer.sign(MESSAGE)
    assert not signer.verify(signature, MESSAGE + b" ")
    assert not signer.verify(signature, MESSAGE[:-1])
    for position in (0, 63, 64, 127):
        digit = "1" if signature[position] != "1" else "2"
        assert not signer.verify(signature[:position] + digit + signature[position + 1 :], MESSAGE)
    r_s_swapped = signature[64:] + signature[:64]
    assert not signer.verify(r_s_swapped, MESSAGE)
    other = Sm2Signer(*gm.generate_sm2_keypair())
    assert not signer.verify(other.sign(MESSAGE), MESSAGE)
    assert not other.verify(signature, MESSAGE)


def test_malformed_signatures_are_false_not_errors(signer: Sm2Signer) -> None:
    signature = signer.sign(MESSAGE)
    r, s = signature[:64], signature[64:]
    junk = [
        "", signature[:-1], signature + "0", "g" * 128, " " + signature[1:], signature[:-1] + "\n",
        "+" + signature[1:], "0x" + signature[2:], "_".join([signature[:63], signature[64:]]),
        "0" * 128, "0" * 64 + s, r + "0" * 64, f"{N:064x}" + s, r + f"{N:064x}", "f" * 128,
        f"{1:064x}{N - 1:064x}",  # r + s = n
        None, 123, signature.encode(),
    ]  # fmt: skip
    for bad in junk:
        assert signer.verify(bad, MESSAGE) is False, bad  # type: ignore[arg-type]
    assert signer.verify(signature, "not bytes") is False  # type: ignore[arg-type]


def test_signature_satisfies_the_standard_equation_independently(
    signer: Sm2Signer, pair: tuple[str, str]
) -> None:
    """Our signature checks out with curve arithmetic and SM3 that share no code with gm.py."""
    for message in (b"", MESSAGE, "中文消息".encode()):
        signature = signer.sign(message)
        assert reference_verify(pair[1], b"1234567812345678", message, signature)
        assert not reference_verify(pair[1], b"1234567812345678", message + b"x", signature)
    assert signer.digest(MESSAGE) == reference_e(pair[1], b"1234567812345678", MESSAGE).to_bytes(32, "big")


def test_independently_made_signature_verifies(signer: Sm2Signer, pair: tuple[str, str]) -> None:
    signature = reference_sign(pair[0], pair[1], b"1234567812345678", MESSAGE)
    assert signer.verify(signature, MESSAGE)
    assert not signer.verify(signature, MESSAGE + b"x")


def test_agrees_with_gmssl_sm3_with_sm2_for_the_default_user_id(pair: tuple[str, str]) -> None:
    theirs = CryptSM2(private_key=pair[0], public_key="", mode=1)
    theirs.public_key = pair[1]  # set directly: gmssl's constructor may strip leading 0/4 digits
    ours = Sm2Signer(None, pair[1])
    assert theirs.verify_with_sm3(Sm2Signer(*pair).sign(MESSAGE), MESSAGE)
    assert ours.verify(theirs.sign_with_sm3(MESSAGE), MESSAGE)


def _openssl_sm2() -> bool:
    if shutil.which("openssl") is None:
        return False
    out = subprocess.run(["openssl", "list", "-public-key-algorithms"], capture_output=True, text=True)
    return out.returncode == 0 and "SM2" in out.stdout


SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


@pytest.mark.skipif(not _openssl_sm2(), reason="the openssl command line has no SM2")
def test_interoperates_with_openssl(tmp_path: Path) -> None:
    user_id = "yiwang@province"
    message_file = tmp_path / "m"
    message_file.write_bytes(MESSAGE)

    # Ours → OpenSSL.
    private, public = gm.generate_sm2_keypair()
    pem = base64.encodebytes(SPKI_PREFIX + bytes.fromhex("04" + public)).decode()
    (tmp_path / "pub.pem").write_text(f"-----BEGIN PUBLIC KEY-----\n{pem}-----END PUBLIC KEY-----\n")
    signature = Sm2Signer(private, public, user_id=user_id).sign(MESSAGE)
    der = encode_dss_signature(int(signature[:64], 16), int(signature[64:], 16))
    (tmp_path / "sig.der").write_bytes(der)
    verify = [
        "openssl", "dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt", f"distid:{user_id}",
        "-signature", str(tmp_path / "sig.der"), str(message_file),
    ]  # fmt: skip
    assert subprocess.run(verify, capture_output=True).returncode == 0
    verify[verify.index(f"distid:{user_id}")] = "distid:1234567812345678"
    assert subprocess.run(verify, capture_output=True).returncode != 0

    # OpenSSL → ours (its public key comes with the 04 prefix).
    key = tmp_path / "k.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "SM2", "-out", str(key)], check=True, capture_output=True
    )
    spki = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    sign = ["openssl", "dgst", "-sm3", "-sign", str(key), "-sigopt", f"distid:{user_id}", str(message_file)]
    r, s = decode_dss_signature(subprocess.run(sign, check=True, capture_output=True).stdout)
    theirs = Sm2Signer(None, spki[-65:].hex(), user_id=user_id)
    assert theirs.verify(f"{r:064x}{s:064x}", MESSAGE)
    assert not theirs.verify(f"{r:064x}{s:064x}", MESSAGE + b"x")
    assert not Sm2Signer(None, spki[-65:].hex()).verify(f"{r:064x}{s:064x}", MESSAGE)


def test_z_value_uses_cryptography_sm3(pair: tuple[str, str]) -> None:
    digest = hashes.Hash(hashes.SM3())
    digest.update(gm.sm2_z(pair[1]) + MESSAGE)
    assert Sm2Signer(None, pair[1]).digest(MESSAGE) == digest.finalize()
    with pytest.raises(ValueError, match="too long"):
        gm.sm2_z(pair[1], "x" * 8192)
