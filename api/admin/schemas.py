"""Schemas of the admin API. Unknown fields are rejected, as on the citizen API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from api.schemas import StrictSchema
from core import clock
from core.errors import Text
from domain.operators.models import ROLES
from domain.operators.sessions import ACTIVE, DISABLED

_role = fields.String(validate=validate.OneOf(ROLES))
_hall_ids = fields.List(
    fields.String(validate=validate.Length(min=1, max=36)),
    validate=validate.Length(max=200),
    metadata={
        "description": "ids of the halls where the operator may work as hall officer (check-in, in-person "
        "checks); empty: any hall. Each must exist (422 `admin.scope_unknown`)."
    },
)
_department_codes = fields.List(
    fields.String(validate=validate.Length(min=1, max=32)),
    validate=validate.Length(max=200),
    metadata={
        "description": "catalog department codes whose complaints and rectification tasks the operator "
        "sees and handles; empty: every department. Each must exist (422 `admin.scope_unknown`)."
    },
)


class LoginSchema(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))
    totp_code = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=16),
        metadata={"description": "6-digit code from the authenticator app"},
    )  # fmt: skip


class OperatorSchema(StrictSchema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String())
    hall_ids = fields.List(
        fields.String(), metadata={"description": "assigned halls; empty: not tied to halls"}
    )
    department_codes = fields.List(
        fields.String(), metadata={"description": "assigned departments; empty: every department"}
    )
    scoped = fields.Boolean(
        metadata={"description": "halls or departments restrict this operator (never for the admin role)"}
    )
    status = fields.String()
    must_change_password = fields.Boolean(
        metadata={"description": "the password is one an admin chose: only changing it is allowed"}
    )
    locked = fields.Boolean(metadata={"description": "a lockout after failed logins is running"})
    locked_until = fields.DateTime(allow_none=True)
    failed_attempts = fields.Integer()
    created_at = fields.DateTime()
    last_login_at = fields.DateTime(allow_none=True)


class LoginResponseSchema(StrictSchema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "token lifetime, seconds"})
    idle_timeout = fields.Integer(
        required=True, metadata={"description": "the session ends after this many idle seconds"}
    )
    session_id = fields.String(required=True)
    must_change_password = fields.Boolean(
        required=True,
        metadata={
            "description": "true: the password is one an admin chose; until POST /admin/v1/me/password "
            "changes it (and, with a code of a secret from POST /admin/v1/me/totp, the TOTP secret), "
            "every other admin route but GET /admin/v1/me and logout is 403 "
            "`admin.password_change_required`"
        },
    )
    operator = fields.Nested(OperatorSchema, required=True)


class MeResponseSchema(StrictSchema):
    operator = fields.Nested(OperatorSchema, required=True)
    session_id = fields.String(required=True)


class OperatorCreateSchema(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(min=3, max=64))
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=128),
        metadata={"description": "initial password, at least 12 characters"},
    )  # fmt: skip
    roles = fields.List(_role, required=True, validate=validate.Length(min=1, max=len(ROLES)))
    hall_ids = _hall_ids
    department_codes = _department_codes


class OperatorCreatedSchema(StrictSchema):
    operator = fields.Nested(OperatorSchema, required=True)
    totp_secret = fields.String(required=True, metadata={"description": "shown only in this response"})
    totp_uri = fields.String(required=True, metadata={"description": "otpauth:// URI for the QR code"})


class PasswordChangeSchema(StrictSchema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))
    totp_code = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=16),
        metadata={"description": "the authenticator's current code (a code already used is refused)"},
    )  # fmt: skip
    new_password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=128),
        metadata={"description": "at least 12 characters, without the username"},
    )  # fmt: skip
    new_totp_code = fields.String(
        load_only=True, validate=validate.Length(min=1, max=16),
        metadata={
            "description": "only while `must_change_password` is set: the current code of the secret "
            "POST /admin/v1/me/totp gave, which then replaces the one the admin saw"
        },
    )  # fmt: skip


class PasswordChangedSchema(StrictSchema):
    operator = fields.Nested(OperatorSchema, required=True)
    sessions_ended = fields.Integer(metadata={"description": "the operator's other sessions, now ended"})


class NewTotpSchema(StrictSchema):
    totp_secret = fields.String(required=True, metadata={"description": "shown only in this response"})
    totp_uri = fields.String(required=True, metadata={"description": "otpauth:// URI for the QR code"})


class CredentialsResetSchema(StrictSchema):
    new_password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=128),
        metadata={"description": "the operator's new password, at least 12 characters, without the username"},
    )  # fmt: skip


class CredentialsResetDoneSchema(OperatorCreatedSchema):
    sessions_ended = fields.Integer(metadata={"description": "the operator's sessions, all ended"})


class OperatorUpdateSchema(StrictSchema):
    roles = fields.List(_role, validate=validate.Length(min=1, max=len(ROLES)))
    status = fields.String(validate=validate.OneOf((ACTIVE, DISABLED)))
    hall_ids = _hall_ids
    department_codes = _department_codes
    must_change_password = fields.Boolean(
        metadata={
            "description": "true: the operator must change their password (and TOTP secret) before "
            "anything else, e.g. after a suspected leak; only their own change clears it"
        },
    )

    @validates_schema
    def _something(self, data: dict, **_: Any) -> None:
        if not data:
            raise ValidationError(
                Text(
                    "give roles, status, hall_ids, department_codes and/or must_change_password",
                    "请给出角色、状态、大厅、部门或须修改密码",
                ),
                field_name="_schema",
            )
        if data.get("must_change_password") is False:  # only the operator's own change clears it
            raise ValidationError(
                Text(
                    "only true: the operator's own password change clears it",
                    "只能设为 true：本人修改密码后自动解除",
                ),
                field_name="must_change_password",
            )


class JobSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    next_attempt_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True, metadata={"description": "reason of the last failure"})
    # Payload values can be personal data (phones, names): only the keys are shown.
    payload_keys = fields.List(fields.String())
    data_erased_at = fields.DateTime(
        allow_none=True,
        metadata={
            "description": "when the personal data of this dead job was erased after its retention"
            " period (OUTBOX_DEAD_SCRUB_DAYS); such a job cannot be replayed (409 jobs.data_erased)"
        },
    )


def _plausible_instant(value: datetime) -> None:
    """By year: instants at the calendar's ends (0001-01-01+14:00) cannot even be moved to UTC."""
    if not 1970 <= value.year <= 9000:
        raise ValidationError(Text("Between the years 1970 and 9000", "年份须在 1970 至 9000 之间"))


class AuditQuerySchema(StrictSchema):
    actor_id = fields.String(validate=validate.Length(max=64))
    action = fields.String(validate=validate.Length(max=64))
    target_id = fields.String(validate=validate.Length(max=64))
    since = fields.AwareDateTime(
        # An auditor in China types the time on the wall clock: read as UTC, 09:00 meant 17:00.
        default_timezone=clock.BEIJING,
        validate=_plausible_instant,
        metadata={"description": "ISO 8601; Beijing time if no zone"},
    )
    before = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "The id of the last event of the page shown: only the events after it. Paging "
            "on with it never repeats an event while new ones arrive (with `page` they shift)."
        },
    )


class AuditEventSchema(StrictSchema):
    id = fields.String()
    at = fields.DateTime()
    actor_type = fields.String()
    actor_id = fields.String(allow_none=True)
    action = fields.String()
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    outcome = fields.String()
    ip = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)
