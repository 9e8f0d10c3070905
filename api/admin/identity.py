"""In-person identity checks at a service hall (role hall_officer): the non-face path to L3."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, current_actor, current_scope, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.schemas import StrictSchema
from core.db import db
from domain.identity import hall
from domain.operators.models import ROLE_HALL_OFFICER

blp = Blueprint(
    "admin_identity", __name__, url_prefix="/admin/v1/identity", description="线下核验 / In-person checks"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_HALL_OFFICER))


class InPersonSchema(StrictSchema):
    account_id = fields.String(required=True, validate=validate.Length(equal=36))
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=32))
    hall_id = fields.String(
        validate=validate.Length(min=1, max=36),
        metadata={
            "description": "the hall where the check is made (its id and name are recorded). An officer "
            "assigned to halls names one of them, or leaves it out when assigned to exactly one."
        },
    )
    hall = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "deprecated: the hall's name as free text, accepted only from officers not "
            "assigned to halls; send hall_id instead"
        },
    )
    document_checked = fields.Boolean(
        required=True,
        validate=validate.Equal(True),
        metadata={"description": "the officer saw the original resident ID card and compared the face"},
    )


class InPersonResultSchema(StrictSchema):
    verification_id = fields.String()
    account_id = fields.String()
    identity_level = fields.String()
    name = fields.String(metadata={"description": "masked"})
    id_number = fields.String(metadata={"description": "masked"})
    hall_id = fields.String(
        allow_none=True,
        metadata={"description": "the hall where the check was made; null for a free-text `hall`"},
    )
    hall = fields.String(metadata={"description": "the hall's name as recorded"})


@blp.route("/in-person-checks")
class InPersonChecks(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(InPersonSchema)
    @blp.response(201, InPersonResultSchema)
    def post(self, body: dict) -> dict:
        """Record that the officer checked the citizen and their ID card in person: the account reaches L3.

        When the account already holds a verified identity the entry must be that identity:
        another ID number is 409 `identity.different_person`, another name (after
        normalisation) 409 `identity.in_person_mismatch`; nothing is written then.

        The hall: `hall_id` (404 `appointments.hall_not_found` for an unknown one, 403
        `admin.out_of_scope` for a hall the officer is not assigned to); an officer assigned to
        exactly one hall may leave it out. Officers not tied to halls may still send the free-text
        `hall` instead; otherwise 422 `admin.hall_required`.
        """
        actor = current_actor()
        outcome = hall.record_in_person(
            db.session(), deps=services().identity, operator_id=actor.id or "",
            account_id=body["account_id"], name=body["name"], id_number=body["id_number"],
            hall=body.get("hall"), hall_id=body.get("hall_id"), scope=current_scope(),
            request_id=actor.request_id,
        )  # fmt: skip
        row = outcome.verification
        return {
            "verification_id": row.id,
            "account_id": outcome.account_id,
            "identity_level": "L3",
            "name": row.name_masked,
            "id_number": row.id_number_masked,
            "hall_id": row.hall_id,
            "hall": row.hall,
        }
