"""Every message marshmallow itself writes for a bad field reaches a citizen in Chinese: the
messages are produced here by real fields and validators, not copied from a list."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from marshmallow import Schema, ValidationError, fields, validate

from api.i18n import localise_field_errors

CHINESE = re.compile(r"[\u4e00-\u9fff]")


class Everything(Schema):
    string = fields.Str(required=True)
    integer = fields.Int()
    number = fields.Float(allow_nan=False)
    decimal = fields.Decimal(allow_nan=False)
    flag = fields.Bool()
    day = fields.Date()
    moment = fields.DateTime()
    aware = fields.AwareDateTime()
    naive = fields.NaiveDateTime()
    clock_time = fields.Time()
    mapping = fields.Dict()
    items = fields.List(fields.Str())
    pair = fields.Tuple((fields.Str(), fields.Str()))
    nested = fields.Nested(lambda: Inner())
    uuid = fields.UUID()
    email = fields.Email()
    url = fields.URL()
    ip = fields.IP()
    big = fields.Int(strict=True)
    confirmed = fields.Bool(validate=validate.Equal(True))
    short = fields.Str(validate=validate.Length(max=2))
    long = fields.Str(validate=validate.Length(min=5))
    between = fields.Str(validate=validate.Length(min=2, max=3))
    exact = fields.Str(validate=validate.Length(equal=4))
    choice = fields.Str(validate=validate.OneOf(["a", "b"]))
    subset = fields.List(fields.Str(), validate=validate.ContainsOnly(["a"]))
    excluded = fields.List(fields.Str(), validate=validate.ContainsNoneOf(["x"]))
    none_of = fields.Str(validate=validate.NoneOf(["x"]))
    pattern = fields.Str(validate=validate.Regexp(r"\A\d+\Z"))
    low = fields.Int(validate=validate.Range(min=1))
    high = fields.Int(validate=validate.Range(max=1))
    inside = fields.Int(validate=validate.Range(min=1, max=2))
    not_null = fields.Str(allow_none=False)


class Inner(Schema):
    name = fields.Str()


BAD = {
    "integer": "x", "number": "nan", "decimal": "nan", "flag": "maybe", "day": "x", "moment": "x",
    "aware": datetime(2026, 1, 1).isoformat(), "naive": "2026-01-01T00:00:00+08:00", "clock_time": "x",
    "mapping": 1, "items": 1, "pair": 1, "nested": 1, "uuid": "x", "email": "x", "url": "x", "ip": "x",
    "big": 1.5, "confirmed": False, "short": "abc", "long": "a", "between": "a", "exact": "a",
    "choice": "c", "subset": ["b"], "excluded": ["x"], "none_of": "x", "pattern": "a", "low": 0, "high": 2,
    "inside": 3, "not_null": None, "unknown_field": 1,
}  # fmt: skip


def _messages(node: object) -> list[str]:
    if isinstance(node, dict):
        return [m for v in node.values() for m in _messages(v)]
    if isinstance(node, list):
        return [m for v in node for m in _messages(v)]
    return [node] if isinstance(node, str) else []


def test_every_message_of_marshmallows_fields_and_validators_is_translated() -> None:
    with pytest.raises(ValidationError) as caught:
        Everything().load(BAD)
    errors = caught.value.messages
    assert len(errors) == len(BAD) + 1  # each bad field, the unknown one, and the missing string
    english = _messages(errors)
    chinese = _messages(localise_field_errors(errors, "zh"))
    untranslated = [en for en, zh in zip(english, chinese, strict=True) if not CHINESE.search(zh)]
    assert untranslated == []
    assert localise_field_errors(errors, "en") == errors


def test_a_control_character_is_refused_in_the_answers_language_only(client) -> None:
    """One language per answer: the field message is Chinese, or English on Accept-Language: en."""
    body = {"phone": "13800138000", "code": "123456", "device_label": "a\x01"}
    zh = client.post("/v1/auth/sms/login", json=body).get_json()["error"]["fields"]["device_label"]
    en = client.post("/v1/auth/sms/login", json=body, headers={"Accept-Language": "en"}).get_json()
    assert zh == ["不允许包含控制字符"]
    assert en["error"]["fields"]["device_label"] == ["control characters are not allowed"]
    odd_key = client.post("/v1/auth/sms/login", json=body | {"x\x02": 1}).get_json()["error"]["fields"]
    assert odd_key["_schema"] == ["字段名包含非法字符"]
