"""Subscribe-message data: each keyword filled and cut to its field type's limit, cleanly.

WeChat refuses the whole message (47003) when one value breaks its type's rule, so values are
fitted here: long text ends in "…" within the limit, a phrase keeps its first five Chinese
characters, a code keeps its printable ASCII. What still does not fit is left out, and the send
fails as bad data rather than with a garbled value.
"""

from __future__ import annotations

import re

from core.text import shorten

LIMITS = {"thing": 20, "character_string": 32, "letter": 32, "phone_number": 17, "car_number": 8}
# What a keyword shows when the event has no value for it (an appointment reminder has no case
# number): WeChat refuses an empty value (47003), and with it the whole message.
BLANKS = {"thing": "无", "character_string": "-", "phrase": "无", "name": "无"}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

# The built-in keyword → placeholder layout of the simulator's (and a typical) templates.
LAYOUTS: dict[str, dict[str, str]] = {
    "tpl_application_progress": {
        "thing1": "service_name", "character_string2": "case_number", "phrase3": "phrase",
        "time4": "time", "thing5": "note",
    },
    "tpl_materials_required": {"thing1": "service_name", "thing2": "note", "date3": "date"},
    "tpl_appointment_reminder": {
        "thing1": "service_name", "time2": "time", "character_string3": "case_number", "thing4": "hall",
    },
}  # fmt: skip


def fit(kind: str, value: str) -> str:
    """`value` made to fit a field of type `kind` (may return "" when nothing fits)."""
    value = " ".join(str(value).split())
    if kind in ("thing",):
        limit = LIMITS[kind]
        return shorten(value, limit)
    if kind == "phrase":
        return "".join(_CJK.findall(value))[:5]
    if kind in ("character_string", "letter"):
        kept = "".join(c for c in value if 0x21 <= ord(c) <= 0x7E)
        if kind == "letter":
            kept = "".join(c for c in kept if c.isalpha())
        return kept[: LIMITS[kind]]
    if kind == "name":
        return value[:10] if _CJK.search(value) else value[:20]
    if kind in LIMITS:
        return value[: LIMITS[kind]]
    return value
