"""Cases for case operators: record a handling stage by hand, and the measured burden per item."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, current_actor, current_scope, require_operator, role_guard
from api.blueprint import Blueprint
from api.i18n import language
from api.idempotency import idempotent
from api.openapi_answers import NULLABLE_STRING, STRING, array_of, json_answer, object_of
from api.schemas import StrictSchema
from core.db import db
from domain.applications import burden, transitions
from domain.applications.states import HANDLER_TARGETS, RESULTS, label
from domain.operators.models import ROLE_CASE_OPERATOR

blp = Blueprint(
    "admin_applications", __name__, url_prefix="/admin/v1/applications", description="办件 / Cases"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_CASE_OPERATOR))


class StageSchema(StrictSchema):
    to = fields.String(required=True, validate=validate.OneOf(sorted(HANDLER_TARGETS)))
    note = fields.String(validate=validate.Length(max=1000), metadata={"description": "e.g. the reason"})
    fields_ = fields.List(
        fields.String(validate=validate.Length(max=200)),
        data_key="fields",
        validate=validate.Length(max=100),
        metadata={"description": "supplement: the form fields to correct"},
    )
    materials = fields.List(fields.String(validate=validate.Length(max=32)), validate=validate.Length(max=60))
    result = fields.String(
        validate=validate.OneOf(RESULTS), metadata={"description": "completed: the outcome"}
    )


class BurdenQuerySchema(StrictSchema):
    service_code = fields.String(validate=validate.Length(max=31))
    bundle_code = fields.String(validate=validate.Length(max=32))


_STAGED = object_of(
    id=STRING, status=STRING, status_label=STRING, case_number=NULLABLE_STRING,
    expected_completion=NULLABLE_STRING | {"format": "date"},
)  # fmt: skip


@blp.route("/<string:app_id>/stages")
class Stages(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY, responses={200: json_answer("the case after the stage", _STAGED)})
    @blp.arguments(StageSchema)
    @blp.response(200)
    def post(self, body: dict, app_id: str) -> dict:
        """Record a handling stage (accepted, supplement requested, completed, …) on a case.
        An operator tied to departments moves only their departments' cases (another is 404)."""
        actor = current_actor()
        app, _ = transitions.advance(
            db.session(), app_id=app_id, to=body["to"], actor_type="operator", actor_id=actor.id,
            note=body.get("note"), fields=body.get("fields_"), materials=body.get("materials"),
            result=body.get("result"), departments=current_scope().departments,
        )  # fmt: skip
        return {
            "id": app.id,
            "status": app.status,
            "status_label": label(app.status, language()),
            "case_number": app.case_number,
            "expected_completion": app.due_on.isoformat() if app.due_on else None,
        }


@blp.route("/burden")
class Burden(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: json_answer("burden per item and per bundle", object_of(items=array_of()))},
    )
    @blp.arguments(BurdenQuerySchema, location="query")
    @blp.response(200)
    def get(self, query: dict) -> dict:
        """Fields prefilled vs typed and materials spared vs uploaded, per item and per bundle.
        An operator tied to departments counts only their departments' applications: their items'
        rows, and each bundle's row over its applications with an item of theirs."""
        return {
            "items": burden.per_item(
                db.session(),
                service_code=query.get("service_code"),
                bundle_code=query.get("bundle_code"),
                departments=current_scope().departments,
            )
        }
