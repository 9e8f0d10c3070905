"""Masking of personal data for responses and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A mainland mobile number, also with the country code (+86, 0086, 86) or written in groups
# (138 1234 5678, 138-1234-5678): the prefix and separators go with the masked digits.
_PHONE = re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+|00)?86[- ]?)?(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?![0-9A-Za-z])")
_CJK = re.compile(r"[\u3400-\u9fff]")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_ID_SHAPE = re.compile(r"\A\d{17}[\dXx]\Z")


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678."""
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_id_number(id_number: str) -> str:
    """110101199003078515 → 110***********8515: the province and city digits and the last four.
    The one rule for a resident ID number wherever it is shown or logged (the identity, the
    wallet's certificates that print it, prefilled forms, shared data, log lines)."""
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:]


def mask_number(number: str, *, id_bearing: bool = False) -> str:
    """A number printed on a certificate: the holder's resident ID number (`id_bearing`: an ID
    card's, a driving licence's) by `mask_id_number`, any other, even 18 digits (a unified
    social credit code), the first and last four characters kept (two each when shorter than
    ten), never more than half of it shown."""
    if id_bearing and _ID_SHAPE.match(number):
        return mask_id_number(number)
    if len(number) <= 4:
        return "*" * len(number)
    keep = 2 if len(number) < 10 else 4
    return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]


def redact_text(text: str) -> str:
    """Replace phone numbers and ID numbers inside free text (log lines)."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group()), text)
    return _PHONE.sub(r"\1****\2", text)


def mask_name(name: str) -> str:
    """张三 → 张*, 张小三 → 张*三, 买买提·艾力 → 买****力: first and last character only."""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# A value this long may be quoted in part (a province message quoting the street of an
# address): runs of at least PARTIAL_RUN of its characters, two of them Chinese, are masked too.
PARTIAL_FROM = 6
PARTIAL_RUN = 4
PARTIAL_LONGEST = 200  # longer values are checked whole and by their first 200 characters


def redact_values(text: str, values: Iterable[str]) -> str:
    """`redact_text`, and each of `values` that occurs in the text masked like a name: for free
    text that may quote personal data the caller knows (a name, an address) but no pattern
    finds. Values shorter than two characters are left alone; longer ones go first, so a value
    inside another is not left half-masked. A part of a long value quoted on its own (at least
    PARTIAL_RUN characters, two of them Chinese) is masked as well, longest part first."""
    ordered = sorted({v for v in values if len(v) >= 2}, key=len, reverse=True)
    for value in ordered:
        if value in text:
            text = text.replace(value, mask_name(value))
    for value in ordered:
        if len(value) >= PARTIAL_FROM:
            text = _mask_parts(text, value[:PARTIAL_LONGEST])
    return redact_text(text)


def _mask_parts(text: str, value: str) -> str:
    """Mask every run of `value`'s characters the text quotes, the longest run first, until
    none is left (a shorter run may be quoted again elsewhere)."""
    masked: set[str] = set()
    while True:
        longest = ""
        for start in range(len(value) - PARTIAL_RUN + 1):
            end = start + PARTIAL_RUN
            if value[start:end] not in text:
                continue
            while end < len(value) and value[start : end + 1] in text:
                end += 1
            part = value[start:end]
            if len(part) > len(longest) and part not in masked and len(_CJK.findall(part)) >= 2:
                longest = part
        if not longest:
            return text
        masked.add(longest)  # once each: a value holding "*" may read the same masked
        text = text.replace(longest, mask_name(longest))
