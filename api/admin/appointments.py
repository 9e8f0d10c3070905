"""Hall officers check citizens in from their appointment QR code (role hall_officer)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, require_operator, role_guard
from api.blueprint import Blueprint
from api.idempotency import idempotent
from api.schemas import StrictSchema
from core.db import db
from domain.appointments import visits
from domain.operators.models import ROLE_HALL_OFFICER

blp = Blueprint(
    "admin_appointments", __name__, url_prefix="/admin/v1/appointments", description="预约签到 / Check-in"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_HALL_OFFICER))


class CheckInSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=10, max=200))
    hall_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=36),
        metadata={
            "description": "the hall where the officer scans (its id); a booking of another hall is refused"
        },
    )


class CheckedInSchema(StrictSchema):
    id = fields.String()
    status = fields.String()
    queue_no = fields.String()
    service_code = fields.String()
    day = fields.Date()


@blp.route("/check-in")
class CheckIn(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(CheckInSchema)
    @blp.response(200, CheckedInSchema)
    def post(self, body: dict) -> object:
        """Scan the citizen's code at the officer's hall: check-in and the queue number (a second scan
        gives the same).

        `hall_id` is required: an unknown hall is 404 `appointments.hall_not_found`, a booking made
        for another hall 409 `appointments.other_hall` (the message names the booked hall).
        """
        return visits.check_in(
            db.session(), secret=current_app.config["SECRET_KEY"], code=body["code"], hall_id=body["hall_id"]
        )
