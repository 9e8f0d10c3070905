"""Subscribe-message template field rules (the limits WeChat enforces with errcode 47003).

The simulator enforces them; senders can check data with the same rules before queueing a message.
A field's type is the keyword name without its trailing number ("thing1" → thing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_DATE = r"(?:(?P<y>\d{4})[年\-/.])?(?P<m>\d{1,2})[月\-/.](?P<d>\d{1,2})日?"
_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
_TIME_VALUE = re.compile(rf"^(?:{_DATE}\s*)?{_TIME}$")
_DATE_VALUE = re.compile(rf"^{_DATE}(?:\s*{_TIME})?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_LETTER = re.compile(r"^[A-Za-z]{1,32}$")
_SYMBOL = re.compile(rf"^[^\w\s{_CJK}]{{1,5}}$")
_CHARACTER_STRING = re.compile(r"^[\x21-\x7e]{1,32}$")
_AMOUNT = re.compile(r"^[¥￥$€£]?(?P<int>\d{1,10})(?:\.\d{1,2})?元?$")
_PHONE_NUMBER = re.compile(r"^[\d+\-() ]{1,17}$")
_CAR_NUMBER = re.compile(rf"^[{_CJK}]?[A-Za-z0-9]+[{_CJK}]?$")
_NAME_CJK = re.compile(rf"^[{_CJK}·]{{1,10}}$")
_NAME_LATIN = re.compile(r"^[A-Za-z .'\-]{1,20}$")
_PHRASE = re.compile(rf"^[{_CJK}]{{1,5}}$")

FIELD_TYPES = (
    "thing", "number", "letter", "symbol", "character_string", "time", "date", "amount",
    "phone_number", "car_number", "name", "phrase", "enum",
)  # fmt: skip


def field_type(keyword: str) -> str:
    """The type of a template keyword: 'character_string12' → 'character_string'."""
    return re.sub(r"\d+$", "", keyword)


def _dates_ok(pattern: re.Pattern[str], value: str) -> bool:
    for part in value.split("~"):
        m = pattern.match(part.strip())
        if m is None:
            return False
        if m.group("m") is not None and not (1 <= int(m.group("m")) <= 12 and 1 <= int(m.group("d")) <= 31):
            return False
    return True


def value_ok(kind: str, value: Any, *, choices: list[str] | None = None) -> bool:
    """Whether `value` fits a field of type `kind`."""
    if not isinstance(value, str) or not value:
        return False
    if kind == "thing":
        return len(value) <= 20
    if kind == "number":
        return bool(_NUMBER.match(value)) and sum(c.isdigit() for c in value) <= 32
    if kind == "letter":
        return bool(_LETTER.match(value))
    if kind == "symbol":
        return bool(_SYMBOL.match(value))
    if kind == "character_string":
        return bool(_CHARACTER_STRING.match(value))
    if kind == "time":
        return _dates_ok(_TIME_VALUE, value)
    if kind == "date":
        return _dates_ok(_DATE_VALUE, value)
    if kind == "amount":
        return bool(_AMOUNT.match(value))
    if kind == "phone_number":
        return bool(_PHONE_NUMBER.match(value))
    if kind == "car_number":
        return len(value) <= 8 and bool(_CAR_NUMBER.match(value))
    if kind == "name":
        return bool(_NAME_CJK.match(value) or _NAME_LATIN.match(value))
    if kind == "phrase":
        return bool(_PHRASE.match(value))
    if kind == "enum":
        return value in (choices or [])
    return False


def invalid_fields(spec: Mapping[str, Mapping[str, Any]], data: Any) -> list[str]:
    """Keywords of `data` ({"thing1": {"value": ...}}) that break `spec` ({"thing1": {"type": ...}})."""
    if not isinstance(data, Mapping):
        return ["data"]
    bad = [key for key in data if key not in spec]
    for key, field in spec.items():
        item = data.get(key)
        value = item.get("value") if isinstance(item, Mapping) else None
        if not value_ok(field["type"], value, choices=field.get("values")):
            bad.append(key)
    return bad
