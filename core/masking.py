"""Masking of personal data for responses and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PHONE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678."""
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def redact_text(text: str) -> str:
    """Replace phone numbers and ID numbers inside free text (log lines)."""
    text = _ID_NUMBER.sub(r"\1********\2", text)
    return _PHONE.sub(r"\1****\2", text)


def mask_name(name: str) -> str:
    """张三 → 张*, 张小三 → 张*三, 买买提·艾力 → 买****力: first and last character only."""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def redact_values(text: str, values: Iterable[str]) -> str:
    """`redact_text`, and each of `values` that occurs in the text masked like a name: for free
    text that may quote personal data the caller knows (a name, an address) but no pattern
    finds. Values shorter than two characters are left alone; longer ones go first, so a value
    inside another is not left half-masked."""
    for value in sorted({v for v in values if len(v) >= 2}, key=len, reverse=True):
        if value in text:
            text = text.replace(value, mask_name(value))
    return redact_text(text)
