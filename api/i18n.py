"""Language of messages: Chinese by default, English on Accept-Language: en."""

from __future__ import annotations

import re
from typing import Any

from flask import request

# marshmallow/webargs messages → Chinese. Unknown messages are passed through.
_FIELD_MESSAGES_ZH = {
    "Missing data for required field.": "必填字段缺失",
    "Unknown field.": "不允许的字段",
    "Not a valid string.": "应为字符串",
    "Not a valid integer.": "应为整数",
    "Not a valid number.": "应为数字",
    "Not a valid boolean.": "应为布尔值",
    "Not a valid email address.": "邮箱格式不正确",
    "Not a valid datetime.": "日期时间格式不正确",
    "Not a valid date.": "日期格式不正确",
    "Not a valid UUID.": "ID 格式不正确",
    "Not a valid list.": "应为列表",
    "Not a valid mapping type.": "应为对象",
    "Invalid input type.": "输入类型不正确",
    "Field may not be null.": "不能为空",
    "Shorter than minimum length {min}.": "长度过短",
    "Longer than maximum length {max}.": "长度过长",
    "String does not match expected pattern.": "格式不正确",
    "Must be one of: {choices}.": "取值不在允许范围内",
    "Invalid value.": "取值无效",
    "Invalid input.": "输入无效",
    "Invalid type.": "类型不正确",
    "Not a valid URL.": "网址格式不正确",
    "Not a valid time.": "时间格式不正确",
    "Not a valid tuple.": "应为列表",
    "Not a valid utf-8 string.": "应为 UTF-8 文本",
    "Not a valid aware datetime.": "日期时间须带时区",
    "Not a valid naive datetime.": "日期时间不能带时区",
    "Number too large.": "数值过大",
    "Special numeric values (nan or infinity) are not permitted.": "不允许非数值或无穷大",
}


_EXACT_LENGTH = re.compile(r"Length must be (\d+)\.")

_LANGUAGES: dict[str, str] = {}  # Accept-Language value → language; phones send a handful of values


def language() -> str:
    """'en' when the client prefers English, else 'zh'."""
    if not request:
        return "zh"
    header = request.headers.get("Accept-Language", "")
    lang = _LANGUAGES.get(header)
    if lang is None:
        lang = _preferred(request.accept_languages)
        if len(header) <= 200:
            if len(_LANGUAGES) >= 1000:
                _LANGUAGES.clear()
            _LANGUAGES[header] = lang
    return lang


def _preferred(accepted: Any) -> str:
    """The first language in the client's order of preference (by quality, then as written) that
    is Chinese or English, by its primary tag: `zh-Hans;q=1, en;q=0.5` (iOS), `zh-TW,en-US;q=0.8`
    are Chinese. (Werkzeug's best_match prefers an exact tag at any quality over a region or
    script tag, and answered English to those.) Chinese when the client names neither."""
    for tag, quality in accepted:  # werkzeug keeps them sorted by quality, stable
        primary = tag.split("-", 1)[0].split("_", 1)[0].lower()
        if quality > 0 and primary in ("zh", "en"):
            return primary
    return "zh"


def _translate(msg: str) -> str:
    zh = getattr(msg, "zh", None)  # core.errors.Text carries its own Chinese
    if zh is not None:
        return zh
    if msg in _FIELD_MESSAGES_ZH:
        return _FIELD_MESSAGES_ZH[msg]
    if msg.startswith("Length must be between") or msg.startswith("Shorter than minimum length"):
        return "长度不符合要求"
    if exact := _EXACT_LENGTH.fullmatch(msg):  # validate.Length(equal=n)
        return f"长度须为 {exact.group(1)}"
    if msg.startswith("Longer than maximum length"):
        return "长度过长"
    if msg.startswith("Must be one of"):
        return "取值不在允许范围内"
    if msg.startswith("Must be greater than") or msg.startswith("Must be less than"):
        return "数值超出允许范围"
    if msg.startswith("Must be equal to"):  # validate.Equal: a confirmation, a fixed value
        return "取值不符合要求"
    if msg.startswith("One or more of the choices you made"):
        return "包含不允许的取值"
    if msg.startswith("Not a valid IP"):
        return "IP 地址格式不正确"
    return msg


def localise_field_errors(errors: object, lang: str) -> object:
    """Translate nested marshmallow error messages when lang is zh."""
    if lang == "en":
        return errors
    if isinstance(errors, dict):
        return {k: localise_field_errors(v, lang) for k, v in errors.items()}
    if isinstance(errors, list):
        return [localise_field_errors(v, lang) for v in errors]
    if isinstance(errors, str):
        return _translate(errors)
    return errors
