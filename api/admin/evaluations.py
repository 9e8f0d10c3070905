"""Rectification of 差评 (role case_operator): list, respond; department figures."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, current_actor, current_scope, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.schemas import RatingsSchema, StrictSchema
from core.db import db
from domain.evaluations import public_ratings, rectification
from domain.operators.models import ROLE_CASE_OPERATOR

blp = Blueprint(
    "admin_evaluations",
    __name__,
    url_prefix="/admin/v1/rectifications",
    description="差评整改 / Rectification",
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_CASE_OPERATOR))


class TaskQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(("open", "responded", "confirmed", "appealed")))
    overdue = fields.Boolean(load_default=False)
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class RectificationTaskSchema(StrictSchema):
    id = fields.String()
    evaluation_id = fields.String()
    department = fields.String(allow_none=True)
    department_code = fields.String(
        allow_none=True, metadata={"description": "the department's catalog code"}
    )
    status = fields.String()
    due_on = fields.Date()
    response = fields.String(allow_none=True)
    appeal_reason = fields.String(allow_none=True)
    rounds = fields.Integer()
    decide_by = fields.Date(
        allow_none=True, metadata={"description": "the citizen's last day to confirm or appeal the response"}
    )
    closed_by = fields.String(
        allow_none=True, metadata={"description": "citizen, or deadline (confirmed by default)"}
    )
    escalated_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class RectificationTaskPageSchema(StrictSchema):
    items = fields.List(fields.Nested(RectificationTaskSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


class RespondSchema(StrictSchema):
    response = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DeptQuerySchema(StrictSchema):
    department = fields.String(required=True, validate=validate.Length(min=1, max=100))


@blp.route("")
class Tasks(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(TaskQuerySchema, location="query")
    @blp.response(200, RectificationTaskPageSchema)
    def get(self, query: dict) -> dict:
        """Rectification tasks, earliest due first (`overdue=true`: escalated and still open);
        showing a citizen's appeal reason is an audited read.

        Cursor pagination: pass the page's `next_cursor` as `cursor` for the next page (`null`
        on the last); a malformed cursor is 400 `evaluations.bad_cursor`. An operator tied to
        departments sees only their departments' tasks.
        """
        items, next_cursor = rectification.tasks_for_operator(
            db.session(), services().encryptor, operator_id=str(current_actor().id),
            request_id=g.get("request_id"), status=query.get("status"), overdue=query["overdue"],
            cursor=query.get("cursor"), limit=query["limit"], scope=current_scope(),
        )  # fmt: skip
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/<string:task_id>/response")
class Respond(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(RespondSchema)
    @blp.response(200, RectificationTaskSchema)
    def post(self, body: dict, task_id: str) -> object:
        """The department's rectification (first, or after the citizen's appeal). Another
        department's task is 404 `evaluations.task_not_found` to an operator tied to departments."""
        return rectification.respond(
            db.session(), task_id=task_id, response=body["response"], operator_id=str(current_actor().id),
            scope=current_scope(), decide_days=current_app.config["RECTIFY_DECIDE_WORKING_DAYS"],
            remind_days=current_app.config["RECTIFY_REMIND_WORKING_DAYS_BEFORE"],
        )  # fmt: skip


@blp.route("/departments")
class Departments(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(DeptQuerySchema, location="query")
    @blp.response(200, RatingsSchema)
    def get(self, query: dict) -> dict:
        """A department's figures, as the public reads them (`GET /v1/departments/{name}/ratings`)
        but from the primary, so a rectification just confirmed counts at once. A name that is no
        department is 404 `catalog.department_not_found`, not a row of zeros."""
        return public_ratings.for_department(db.session(), query["department"])
