"""Marshmallow schemas shared by citizen endpoints. Unknown fields are rejected."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


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
