"""Marshmallow schemas shared by citizen endpoints. Unknown fields are rejected."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from core.errors import Text
from core.text import has_visible_text

# C0 controls (NUL included: PostgreSQL text cannot hold it) except tab, newline, return; DEL;
# lone surrogates (JSON may escape "\\ud800", which no UTF-8 text, database or log can hold).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# One language per answer, as every field message (api/i18n.py reads a Text's Chinese).
_CONTROL_CHARACTERS = Text("control characters are not allowed", "不允许包含控制字符")
_NO_VISIBLE_TEXT = Text(
    "must show something: not only spaces or invisible characters", "不能为空，也不能只有空格或不可见字符"
)
_BAD_FIELD_NAME = Text("a field name holds characters that are not allowed", "字段名包含非法字符")


def _control_char_errors(value: Any) -> Any:
    if isinstance(value, str):
        return [_CONTROL_CHARACTERS] if _CONTROL.search(value) else None
    if isinstance(value, dict):
        errors = {k: e for k, v in value.items() if (e := _control_char_errors(v))}
        bad_keys = [k for k in value if isinstance(k, str) and _CONTROL.search(k)]
        if bad_keys:  # not echoed back: the key itself cannot be encoded
            return {"_schema": [_BAD_FIELD_NAME]}
        return errors or None
    if isinstance(value, list):
        errors = {i: e for i, v in enumerate(value) if (e := _control_char_errors(v))}
        return errors or None
    return None


class JsonBoolean(fields.Boolean):
    """JSON's true or false and nothing else. marshmallow's Boolean also takes "yes", "on", 1 and
    "1": a consent or a decision must not be given by a value that merely looks true."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class VisibleText(fields.String):
    """Text people read (an app's name, a notice's title): taken without surrounding whitespace,
    and refused when nothing in it can be seen (spaces, zero-width or bidi characters only), which
    would show as a blank. Length validators see the stripped text, which is what is stored."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not has_visible_text(text):
            raise ValidationError([_NO_VISIBLE_TEXT])
        return text


class StrictSchema(Schema):
    """Unknown fields and control characters in any string are rejected (422)."""

    class Meta:
        unknown = RAISE
        ordered = True

    @pre_load
    def _reject_control_characters(self, data: Any, **_: Any) -> Any:
        source = data.to_dict() if hasattr(data, "to_dict") else data
        errors = _control_char_errors(source) if isinstance(source, dict) else None
        if errors:
            raise ValidationError(errors)
        return data


class HealthSchema(StrictSchema):
    status = fields.String()


class ReadySchema(StrictSchema):
    status = fields.String()
    checks = fields.Dict(keys=fields.String(), values=fields.String())


class TokenResponseSchema(StrictSchema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "access token lifetime, seconds"})
    session_id = fields.String(required=True)
    account_id = fields.String(required=True)
    new_account = fields.Boolean(metadata={"description": "the account was created by this login"})


class RefreshRequestSchema(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class DeviceLabelMixin:
    device_label = fields.String(
        validate=validate.Length(max=64),
        metadata={"description": "e.g. 'iPhone 15' (shown in the device list)"},
    )


class AccountSchema(StrictSchema):
    id = fields.String()
    status = fields.String()
    identity_level = fields.String()
    created_at = fields.DateTime()
    phone = fields.String(allow_none=True, metadata={"description": "masked, e.g. 138****5678"})
    channels = fields.Dict(keys=fields.String(), values=fields.Boolean())
    session_id = fields.String()
    channel = fields.String()


class FullPhoneSchema(StrictSchema):
    phone = fields.String(allow_none=True, metadata={"description": "unmasked; each read is audited"})


class SessionSchema(StrictSchema):
    id = fields.String()
    channel = fields.String()
    device_label = fields.String(allow_none=True)
    created_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    current = fields.Boolean()


class RatingsSchema(StrictSchema):
    """Satisfaction figures of a service or department (public, and in the admin API)."""

    total = fields.Integer()
    levels = fields.Dict()
    satisfied_rate = fields.Float(allow_none=True)
    bad = fields.Integer()
    bad_rectified = fields.Integer(metadata={"description": "差评 whose rectification the citizen confirmed"})
    bad_rectified_by_default = fields.Integer(
        metadata={
            "description": "差评 whose rectification counts as confirmed: the citizen neither confirmed "
            "nor appealed it by decide_by (this province's rule); not in bad_rectified"
        }
    )
