"""The working-day calendar (role catalog_editor): local overrides and a due-date checker."""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.idempotency import idempotent
from api.schemas import StrictSchema
from core.db import db
from domain.applications import calendar_changes
from domain.calendar import service as calendar
from domain.calendar.models import KINDS, CalendarOverride
from domain.operators.models import ROLE_CATALOG_EDITOR

blp = Blueprint(
    "admin_calendar", __name__, url_prefix="/admin/v1/calendar", description="工作日历 / Working-day calendar"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_CATALOG_EDITOR))

_region = fields.String(
    validate=validate.Length(equal=6),
    metadata={"description": "GB/T 2260 region code; 000000 = nationwide", "example": "440100"},
)


class OverrideSchema(StrictSchema):
    id = fields.String()
    date = fields.Date(attribute="day")
    region = fields.String()
    kind = fields.String(metadata={"description": "holiday: local day off; workday: local extra working day"})
    reason = fields.String()
    created_at = fields.DateTime()
    created_by = fields.String(allow_none=True)


class OverrideCreateSchema(StrictSchema):
    date = fields.Date(required=True)
    region = fields.String(required=True, validate=validate.Length(equal=6), metadata=_region.metadata)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=calendar.MAX_REASON))


class OverrideQuerySchema(StrictSchema):
    region = fields.String(validate=validate.Length(equal=6), metadata=_region.metadata)
    year = fields.Integer(validate=validate.Range(min=2000, max=2100))


class DueDateQuerySchema(StrictSchema):
    start = fields.Date(
        required=True, metadata={"description": "the day the time limit starts (not counted)"}
    )
    value = fields.Integer(required=True, validate=validate.Range(min=0))
    unit = fields.String(load_default=calendar.UNIT_WORKING_DAY, validate=validate.OneOf(calendar.UNITS))
    region = fields.String(required=True, validate=validate.Length(equal=6), metadata=_region.metadata)


class DueDateSchema(StrictSchema):
    start = fields.Date(required=True)
    value = fields.Integer(required=True)
    unit = fields.String(required=True)
    region = fields.String(required=True)
    due_date = fields.Date(required=True)
    skipped = fields.List(
        fields.Date(), required=True, metadata={"description": "non-working days the count passed over"}
    )
    provisional = fields.Boolean(
        required=True,
        metadata={"description": "the due date lies in the year the statutory data does not cover yet"},
    )
    last_statutory = fields.Date(
        required=True, metadata={"description": "last day the installed holiday data covers"}
    )
    last_supported = fields.Date(
        required=True,
        metadata={"description": "last day a due date may fall on (the provisional year's end)"},
    )


@blp.route("/overrides")
class Overrides(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(OverrideQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, OverrideSchema(many=True))
    def get(self, region: str | None = None, year: int | None = None) -> list[CalendarOverride]:
        """Overrides by date; `region` gives that code's own rows only (not inherited ones)."""
        return calendar.list_overrides(db.reader(), region=region, year=year)

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(OverrideCreateSchema)
    @blp.response(201, OverrideSchema)
    def post(self, body: dict) -> CalendarOverride:
        """Add a local holiday or extra working day (one per region and date). The halls' slots
        of that day in that region close (or open) with it: no booking lands on a closed day from
        this answer on. The due dates of open cases counting through that day move with it, and
        so do the rectifications' deadlines and the citizens' periods to decide (never shortened).

        Those recounts run shortly after the answer, in one background job (`calendar.follow`)
        written with the override: until it has run, the dates shown are the old ones. A job that
        fails is retried; one that keeps failing is listed, with its last error, by
        `GET /admin/v1/jobs?status=dead` (role ops) and can be replayed from there."""
        return calendar_changes.add_override(
            db.session(), actor=current_actor(), region=body["region"], day=body["date"],
            kind=body["kind"], reason=body["reason"], **_rectify_days(),
        )  # fmt: skip


@blp.route("/overrides/<string:override_id>")
class OverrideItem(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def delete(self, override_id: str) -> None:
        """Remove an override; the halls' slots of that day follow at once, and the due dates
        of open cases counting through that day move back shortly after, in a `calendar.follow`
        job as for adding one (a citizen's period to decide on a rectification is never
        shortened)."""
        calendar_changes.delete_override(
            db.session(), actor=current_actor(), override_id=override_id, **_rectify_days()
        )


@blp.route("/due-date")
class DueDate(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(DueDateQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, DueDateSchema)
    def get(self, start: date, value: int, unit: str, region: str) -> dict:
        """The due date of a time limit in a region, and the non-working days it skipped."""
        result = calendar.due_date(db.reader(), start, value, unit, region=region)
        return {
            "start": result.start,
            "value": result.value,
            "unit": result.unit,
            "region": result.region,
            "due_date": result.due,
            "skipped": result.skipped,
            "provisional": result.provisional,
            "last_statutory": calendar.last_statutory_date(),
            "last_supported": calendar.last_supported_date(),
        }


def _rectify_days() -> dict[str, int]:
    """The configured rectification periods, for the deadlines and periods that follow an override."""
    return {
        "rectify_decide_days": current_app.config["RECTIFY_DECIDE_WORKING_DAYS"],
        "rectify_remind_days": current_app.config["RECTIFY_REMIND_WORKING_DAYS_BEFORE"],
        "rectify_working_days": current_app.config["RECTIFY_WORKING_DAYS"],
    }
