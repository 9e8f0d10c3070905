"""Background jobs (role ops): list, inspect, replay dead ones."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.schemas import JobSchema
from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.idempotency import idempotent
from api.schemas import StrictSchema
from core.db import db
from core.outbox import service as outbox
from core.outbox.models import OutboxJob
from domain.operators import jobs
from domain.operators.jobs import JOB_STATUSES
from domain.operators.models import ROLE_OPS

blp = Blueprint("admin_jobs", __name__, url_prefix="/admin/v1/jobs", description="后台任务 / Jobs")
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_OPS))


def job_body(job: OutboxJob) -> dict:
    """The JSON view of a job; payload values stay hidden."""
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "next_attempt_at": job.next_attempt_at,
        "finished_at": job.finished_at,
        "last_error": job.last_error,
        "payload_keys": sorted((job.payload or {}).keys()),
        "data_erased_at": job.scrubbed_at(),
    }


class JobPageQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class JobPageSchema(StrictSchema):
    items = fields.List(fields.Nested(JobSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


@blp.route("")
class Jobs(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(JobPageQuerySchema, location="query")
    @blp.response(200, JobPageSchema)
    def get(self, query: dict) -> dict:
        """Jobs, newest first; `status=dead` lists the dead letters waiting for an operator.

        Cursor pagination: `{items, next_cursor}`; pass the page's `next_cursor` as `cursor` for
        the next page (`null` on the last); a malformed cursor is 400 `jobs.bad_cursor`.
        """
        items, next_cursor = outbox.page_jobs(
            db.session(), status=query.get("status"), cursor=query.get("cursor"), limit=query["limit"]
        )
        return {"items": [job_body(j) for j in items], "next_cursor": next_cursor}


@blp.route("/<string:job_id>")
class JobItem(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, JobSchema)
    def get(self, job_id: str) -> dict:
        """One job with its last error."""
        return job_body(jobs.get_job(db.session(), job_id))


@blp.route("/<string:job_id>/replay")
class JobReplay(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, JobSchema)
    def post(self, job_id: str) -> dict:
        """Run a dead job again with fresh attempts; 409 `admin.job_not_dead` for any other state,
        409 `jobs.data_erased` for one whose personal data was erased after OUTBOX_DEAD_SCRUB_DAYS."""
        return job_body(jobs.replay(db.session(), actor=current_actor(), job_id=job_id))
