"""Hall appointments: halls, an item's slots, booking, cancelling, rescheduling."""

from __future__ import annotations

import json
import threading
import time
from datetime import date

from flask import Response, current_app
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, current_principal, public, require_citizen
from api.blueprint import Blueprint
from api.idempotency import idempotent
from api.schemas import StrictSchema
from core.db import db
from domain.appointments import service as appointments
from domain.appointments import slots as hall_slots
from domain.appointments import visits
from domain.appointments.models import Appointment

halls_blp = Blueprint("halls", __name__, url_prefix="/v1/halls", description="办事大厅 / Halls")
halls_blp.before_request(require_citizen)
slots_blp = Blueprint("slots", __name__, url_prefix="/v1/services", description="预约时段 / Slots")
slots_blp.before_request(require_citizen)
blp = Blueprint("appointments", __name__, url_prefix="/v1/appointments", description="预约 / Appointments")
blp.before_request(require_citizen)
BLUEPRINTS = [halls_blp, slots_blp, blp]


class HallSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    address = fields.String()
    region = fields.String()
    opening_hours = fields.Dict(metadata={"description": "ISO weekday → [[opens, closes], …] (Beijing time)"})
    windows = fields.Integer()
    service_codes = fields.List(fields.String())


class HallQuerySchema(StrictSchema):
    service = fields.String(validate=validate.Length(max=64))
    # ASCII digits only: Python's \d also matches full-width digits (３１０１１０), which no hall
    # code has, so such a query would silently find nothing instead of being refused (422).
    region = fields.String(
        validate=validate.Regexp(r"\A[0-9]{6}\Z"),
        metadata={
            "description": "GB/T 2260 code, 6 ASCII digits: XX0000 a province, XXXX00 a city, else a county",
            "pattern": "^[0-9]{6}$",  # as clients' (ECMA-262) regexes read it: \A and \Z are Python's
        },
    )


class SlotQuerySchema(StrictSchema):
    hall = fields.String(required=True, validate=validate.Length(min=1, max=36))
    date = fields.Date(required=True)


class SlotSchema(StrictSchema):
    id = fields.String()
    starts_at = fields.DateTime(
        metadata={"description": "always in the future: times that have already started are not listed"}
    )
    ends_at = fields.DateTime()
    capacity = fields.Integer()
    available = fields.Integer(metadata={"description": "places left; 0 means fully booked"})


class BookSchema(StrictSchema):
    slot_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


class AppointmentSchema(StrictSchema):
    id = fields.String()
    hall_id = fields.String()
    service_code = fields.String()
    slot_id = fields.String()
    day = fields.Date()
    starts_at = fields.DateTime(allow_none=True)
    status = fields.String(
        metadata={
            "description": "booked, cancelled, checked_in, no_show, hall_closed (cancelled by the hall: "
            "the calendar closed its day after it was booked; may be moved once with reschedule)"
        }
    )
    queue_no = fields.String(allow_none=True)
    created_at = fields.DateTime()
    moved_to = fields.String(
        allow_none=True,
        metadata={
            "description": "null unless a reschedule moved this booking (it is cancelled then): the id "
            "of the booking it was moved to, for the app to open instead. Cancelling a moved booking "
            "is 409 appointments.not_changeable"
        },
    )


def _view(appointment: Appointment | appointments.Booking) -> dict:
    if isinstance(appointment, appointments.Booking):
        return dict(vars(appointment))  # plain values: asdict's deep copy is not needed
    slot = appointments.slot_of(db.session(), appointment)
    return {
        "id": appointment.id, "hall_id": appointment.hall_id, "service_code": appointment.service_code,
        "slot_id": appointment.slot_id, "day": appointment.day, "starts_at": slot.starts_at if slot else None,
        "status": appointment.status, "queue_no": appointment.queue_no, "created_at": appointment.created_at,
        "moved_to": appointment.moved_to,
    }  # fmt: skip


@halls_blp.route("")
class Halls(MethodView):
    @public
    @halls_blp.arguments(HallQuerySchema, location="query")
    @halls_blp.response(200, HallSchema(many=True))
    def get(self, query: dict) -> list:
        """Halls, optionally those handling one item (`service`) or in one region."""
        return hall_slots.halls(db.reader(), service_code=query.get("service"), region=query.get("region"))


# Rendered slot lists per (item, hall, day), kept a second per process: a listing is read far
# more often than booked, and a place shown free a moment too long is answered "full" by booking.
_SLOT_CACHE_SECONDS = 1.0
_slot_cache: dict[tuple[str, str, str], tuple[float, bytes]] = {}
_slot_lock = threading.Lock()


def _forget_slots() -> None:
    """This process's lists are stale once it changed a booking (other processes: ≤ 1 s)."""
    with _slot_lock:
        _slot_cache.clear()


@slots_blp.route("/<string:code>/slots")
class Slots(MethodView):
    @public
    @slots_blp.arguments(SlotQuerySchema, location="query")
    @slots_blp.response(200, SlotSchema(many=True))
    def get(self, query: dict, code: str) -> Response:
        """The item's bookable times at a hall on a date, with places left (at most a second old).

        Times that have already started (earlier today) are not listed, so late in the day the
        list can be empty; a place shown free may be full by the time it is booked (409)."""
        day: date = query["date"]
        key = (code, query["hall"], day.isoformat())
        now = time.monotonic()
        with _slot_lock:
            hit = _slot_cache.get(key)
        if hit is None or hit[0] < now:
            listed = hall_slots.slots(db.session(), service_code=code, hall_id=query["hall"], day=day)
            body = json.dumps(SlotSchema(many=True).dump(listed), ensure_ascii=False).encode()
            hit = (now + _SLOT_CACHE_SECONDS, body)
            with _slot_lock:
                if len(_slot_cache) > 10_000:
                    _slot_cache.clear()
                _slot_cache[key] = hit
        return Response(hit[1], mimetype="application/json")


@blp.route("")
class Appointments(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, AppointmentSchema(many=True))
    def get(self) -> list:
        """The citizen's appointments, latest day first."""
        return [_view(a) for a in appointments.mine(db.session(), current_principal().account_id)]

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(BookSchema)
    @blp.response(201, AppointmentSchema)
    def post(self, body: dict) -> dict:
        """Book a place (send an Idempotency-Key: a retry gets the same booking)."""
        made = appointments.book(
            db.session(), account_id=current_principal().account_id, slot_id=body["slot_id"]
        )
        _forget_slots()
        return _view(made)


@blp.route("/<string:appointment_id>")
class OneAppointment(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, AppointmentSchema)
    def get(self, appointment_id: str) -> dict:
        """One of the citizen's appointments: what a reminder, or the booking a reschedule moved
        to (`moved_to`), opens. Anyone else's is 404 `appointments.not_found`."""
        found = appointments.owned(db.session(), current_principal().account_id, appointment_id)
        return _view(found)


@blp.route("/<string:appointment_id>/cancel")
class Cancel(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, AppointmentSchema)
    def post(self, appointment_id: str) -> dict:
        """Cancel before the slot starts; the place is given back."""
        done = appointments.cancel(
            db.session(), account_id=current_principal().account_id, appointment_id=appointment_id
        )
        _forget_slots()
        return _view(done)


@blp.route("/<string:appointment_id>/reschedule")
class Reschedule(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(BookSchema)
    @blp.response(200, AppointmentSchema)
    def post(self, body: dict, appointment_id: str) -> dict:
        """Move to another slot of the same item; if it is full the old booking stays."""
        moved = appointments.reschedule(
            db.session(), account_id=current_principal().account_id, appointment_id=appointment_id,
            slot_id=body["slot_id"],
        )  # fmt: skip
        _forget_slots()
        return _view(moved)


class CodeSchema(StrictSchema):
    code = fields.String(metadata={"description": "show as a QR code at the hall; valid 5 minutes"})
    expires_at = fields.DateTime()


@blp.route("/<string:appointment_id>/check-in-code")
class CheckInCode(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, CodeSchema)
    def get(self, appointment_id: str) -> dict:
        """The code the hall scans to check the citizen in (取号)."""
        code, expires = visits.check_in_code(
            db.session(), secret=current_app.config["SECRET_KEY"], account_id=current_principal().account_id,
            appointment_id=appointment_id,
        )  # fmt: skip
        return {"code": code, "expires_at": expires}
