"""Hall officers check citizens in from their appointment QR code (role hall_officer)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, current_scope, require_operator, role_guard
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
        validate=validate.Length(min=1, max=36),
        metadata={
            "description": "the hall where the officer scans (its id); a booking of another hall is refused. "
            "May be left out only by an officer assigned to exactly one hall (that hall is taken)."
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

        `hall_id` is required unless the officer is assigned to exactly one hall (422
        `admin.hall_required` without it); a hall the officer is not assigned to is 403
        `admin.out_of_scope`, an unknown hall 404 `appointments.hall_not_found`, a booking made
        for another hall 409 `appointments.other_hall` (the message names the booked hall).
        Nothing is written on any of these.
        """
        return visits.check_in(
            db.session(), secret=current_app.config["SECRET_KEY"], code=body["code"],
            hall_id=body.get("hall_id"), scope=current_scope(),
        )  # fmt: skip
