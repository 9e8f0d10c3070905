"""Request and response bodies of the mini-program bridge."""

from __future__ import annotations

from marshmallow import fields, validate

from api.schemas import DeviceLabelMixin, StrictSchema, TokenResponseSchema


class MiniprogramLoginSchema(DeviceLabelMixin, StrictSchema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "the code from wx.login (single use, 5 minutes)"},
    )


class PhoneCodeSchema(StrictSchema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "the code from the getPhoneNumber button (single use, 5 minutes)"},
    )


class PhoneBindResponseSchema(StrictSchema):
    phone = fields.String(metadata={"description": "the bound number, masked"})
    merged = fields.Boolean(
        metadata={"description": "this account was merged into the phone's existing account"}
    )
    tokens = fields.Nested(
        TokenResponseSchema,
        allow_none=True,
        metadata={
            "description": "after a merge: tokens of the account to continue with (the old ones stop working)"
        },
    )
