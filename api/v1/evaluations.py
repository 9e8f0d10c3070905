"""好差评: rate a completed case once, confirm or appeal its rectification; public ratings per item."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, current_principal, public, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.errors import ErrorSchema
from api.idempotency import idempotent
from api.schemas import JsonBoolean, RatingsSchema, StrictSchema
from core import clock
from core.db import db
from domain.applications.deadlines import local_date
from domain.evaluations import public_ratings, rectification
from domain.evaluations import service as evaluations
from domain.evaluations.models import LEVELS, Evaluation, RectificationTask

blp = Blueprint("evaluations", __name__, url_prefix="/v1/applications", description="好差评 / Ratings")
blp.before_request(require_citizen)
public_blp = Blueprint(
    "ratings", __name__, url_prefix="/v1/services", description="服务评价 / Public ratings"
)
public_blp.before_request(require_citizen)
dept_blp = Blueprint(
    "department_ratings", __name__, url_prefix="/v1/departments", description="部门评价 / Department ratings"
)
dept_blp.before_request(require_citizen)
BLUEPRINTS = [blp, public_blp, dept_blp]


class RateSchema(StrictSchema):
    level = fields.String(required=True, metadata={"description": "、".join(LEVELS)})
    indicators = fields.Dict(
        load_default=None,
        metadata={"description": "efficiency, guide_accuracy, convenience, usability → level"},
    )
    reason = fields.String(load_default=None, metadata={"description": "required for 不满意 and 非常不满意"})


class DecisionSchema(StrictSchema):
    accept = JsonBoolean(
        required=True, metadata={"description": "true: the rectification is accepted; false: appeal"}
    )
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class RectificationSchema(StrictSchema):
    status = fields.String(
        metadata={
            "description": "open (waiting for the department), responded (the citizen confirms or appeals "
            "it), confirmed, appealed (back to the department for review)"
        }
    )
    due_on = fields.Date(metadata={"description": "the department's deadline for this round"})
    response = fields.String(
        allow_none=True,
        metadata={"description": "the department's latest response (整改情况), null until it responds"},
    )
    responded_at = fields.DateTime(allow_none=True)
    rounds = fields.Integer(metadata={"description": "1 the first response, 2 after the appeal"})
    decide_by = fields.Date(
        allow_none=True,
        metadata={
            "description": "the last day to confirm or appeal the response; afterwards it counts as "
            "confirmed (closed_by deadline)"
        },
    )
    can_confirm = fields.Boolean(
        metadata={
            "description": "whether the response may still be confirmed: it awaits the citizen and "
            "decide_by has not passed"
        }
    )
    can_appeal = fields.Boolean(
        metadata={
            "description": "whether the response may still be appealed: as can_confirm, and one "
            "review round only"
        }
    )
    closed_by = fields.String(
        allow_none=True, metadata={"description": "citizen, or deadline (confirmed by default)"}
    )


class EvaluationSchema(StrictSchema):
    id = fields.String()
    application_id = fields.String()
    level = fields.String()
    indicators = fields.Dict()
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    rectification = fields.Nested(
        RectificationSchema, allow_none=True, metadata={"description": "null unless the rating is a 差评"}
    )


def _view(evaluation: Evaluation) -> dict:
    task = rectification.task_of(db.session(), evaluation.id)
    reason = evaluations.reason_of(evaluation, services().encryptor)
    return {
        "id": evaluation.id, "application_id": evaluation.application_id, "level": evaluation.level,
        "indicators": evaluation.indicators, "reason": reason,
        "created_at": evaluation.created_at,
        "rectification": _task_view(task) if task else None,
    }  # fmt: skip


def _task_view(task: RectificationTask) -> dict:
    """The task as the citizen sees it. Past `decide_by` (Beijing date) both flags are false even
    before the sweeper has confirmed it by default: a decision then is 409."""
    fields_ = ("status", "due_on", "response", "responded_at", "rounds", "decide_by", "closed_by")
    today = local_date(clock.now())
    return {name: getattr(task, name) for name in fields_} | {
        "can_confirm": rectification.can_decide(task, today),
        "can_appeal": rectification.can_appeal(task, today),
    }


@blp.route("/<string:application_id>/evaluation")
class Rate(MethodView):
    # No @scope, as the POST and the decision: third-party apps are refused, only the citizen's
    # own apps read a rating and the rectification they must confirm or appeal.
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, EvaluationSchema)
    def get(self, application_id: str) -> dict:
        """The citizen's rating of the case, with the rectification of a 差评: its state and the
        department's response, to read before confirming or appealing it. 404
        `application.not_found` for anyone else's case, `evaluations.not_rated` before rating."""
        found = evaluations.of_case(
            db.session(), account_id=current_principal().account_id, application_id=application_id
        )
        return _view(found)

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(RateSchema)
    @blp.response(201, EvaluationSchema)
    def post(self, body: dict, application_id: str) -> dict:
        """Rate the completed case (once); the two lowest levels need a reason and start a rectification."""
        made = evaluations.rate(
            db.session(), services().encryptor, account_id=current_principal().account_id,
            application_id=application_id, level=body["level"], indicators=body["indicators"],
            reason=body["reason"], channel=current_principal().channel or "app",
            working_days=current_app.config["RECTIFY_WORKING_DAYS"],
        )  # fmt: skip
        return _view(made)


@blp.route("/<string:application_id>/evaluation/decision")
class Decide(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(DecisionSchema)
    @blp.response(200, RectificationSchema)
    @blp.alt_response(
        409, schema=ErrorSchema,
        description="evaluations.decision_closed: decide_by has passed (the message names it); "
        "evaluations.appeal_limit: the review round was used, confirm or file a complaint; "
        "evaluations.task_state: not answered yet, or already closed",
    )  # fmt: skip
    def post(self, body: dict, application_id: str) -> object:
        """Accept the department's rectification, or appeal it (申诉复核) with a reason, by the
        response's `decide_by` (inclusive). 404 `evaluations.task_not_found` for no task of the
        citizen's; 422 `evaluations.bad_rating` for an appeal without a reason; 409
        `evaluations.decision_closed` once `decide_by` has passed (nothing is written; the
        sweeper confirms it by default), 409 `evaluations.appeal_limit` for an appeal after the
        one review round (申诉复核), 409 `evaluations.task_state` before the department has
        answered or once the task is closed."""
        session = db.session()
        found = session.query(Evaluation).filter_by(application_id=application_id).one_or_none()
        if found is None or found.account_id != current_principal().account_id:
            from domain.evaluations.errors import TaskNotFound

            raise TaskNotFound()
        return _task_view(rectification.decide(
            session, services().encryptor, account_id=current_principal().account_id, evaluation_id=found.id,
            accept=body["accept"], reason=body["reason"],
            working_days=current_app.config["RECTIFY_WORKING_DAYS"],
        ))  # fmt: skip


@public_blp.route("/<string:code>/ratings")
class Ratings(MethodView):
    @public
    @public_blp.response(200, RatingsSchema)
    def get(self, code: str) -> dict:
        """How citizens rated this item: counts per level, share satisfied, 差评 rectified.
        404 `catalog.item_not_found` for no such item."""
        return public_ratings.for_service(db.reader(), code)


@dept_blp.route("/<string:name>/ratings")
class DepartmentRatings(MethodView):
    @public
    @dept_blp.response(200, RatingsSchema)
    def get(self, name: str) -> dict:
        """How citizens rated a handling department (by its name). 404
        `catalog.department_not_found` for no such department."""
        return public_ratings.for_department(db.reader(), name)
