"""Check characters of the codes shared data and certificates carry.

- GB 11643 citizen ID number: ISO 7064 MOD 11-2 over the first 17 digits.
- GB 32100 unified social credit code (USCC): weighted sum modulo 31.
- GB/T 36901 e-certificate identifier
  `1.2.156.3005.2.<type code>.<issuer USCC>.<serial>.<3-digit version>.<check>`:
  ISO 7064 MOD 37,36 (the hybrid system over 0-9A-Z) computed over every character before the
  last dot, dots left out.
"""

from __future__ import annotations

import re
import string

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

MOD36_ALPHABET = string.digits + string.ascii_uppercase
ECERT_PREFIX = "1.2.156.3005.2"
_ECERT_RE = re.compile(
    r"^1\.2\.156\.3005\.2\.(?P<type>[0-9A-Z]{21})\.(?P<issuer>[0-9A-Z]{18})"
    r"\.(?P<serial>[0-9A-Z]{1,40})\.(?P<version>\d{3})\.(?P<check>[0-9A-Z])$"
)


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of an ID number."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def uscc_check_char(first17: str) -> str:
    """The 18th (check) character of a unified social credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def mod37_36_check_char(chars: str) -> str:
    """ISO 7064 MOD 37,36 check character of `chars` (0-9, A-Z)."""
    m = 36
    p = m
    for c in chars.upper():
        p = (p + MOD36_ALPHABET.index(c)) % m or m
        p = (p * 2) % (m + 1)
    return MOD36_ALPHABET[(m + 1 - p) % m]


def mod37_36_valid(chars_with_check: str) -> bool:
    """True when the last character is the MOD 37,36 check character of the rest."""
    s = chars_with_check.upper()
    if len(s) < 2 or any(c not in MOD36_ALPHABET for c in s):
        return False
    return mod37_36_check_char(s[:-1]) == s[-1]


def ecert_identifier(type_code: str, issuer_uscc: str, serial: str, version: int = 1) -> str:
    """A GB/T 36901 certificate identifier with its check character."""
    body = f"{ECERT_PREFIX}.{type_code}.{issuer_uscc}.{serial}.{version:03d}"
    return f"{body}.{mod37_36_check_char(body.replace('.', ''))}"


def ecert_identifier_problem(identifier: str) -> str | None:
    """None for a well-formed identifier with the right check character, else the problem."""
    if not isinstance(identifier, str):
        return "must be a string"
    match = _ECERT_RE.match(identifier)
    if match is None:
        return "must be 1.2.156.3005.2.<type>.<issuer USCC>.<serial>.<version>.<check> (GB/T 36901)"
    if not mod37_36_valid(identifier.replace(".", "")):
        return "check character does not match (ISO 7064 MOD 37,36)"
    return None


def ecert_type_of(identifier: str) -> str | None:
    match = _ECERT_RE.match(identifier or "")
    return match["type"] if match else None
