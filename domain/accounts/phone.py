"""Mainland China mobile numbers: validation and normalisation."""

from __future__ import annotations

import re

from domain.accounts.errors import InvalidPhone

_MOBILE = re.compile(r"\A1[3-9][0-9]{9}\Z")  # ASCII digits only: \d also matches ８


def normalize_phone(raw: str) -> str:
    """Return the 11-digit number, accepting +86 / 0086 / 86 prefixes, spaces and dashes."""
    if not isinstance(raw, str):
        raise InvalidPhone()
    digits = re.sub(r"[\s\-()]", "", raw)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not _MOBILE.fullmatch(digits):
        raise InvalidPhone()
    return digits
