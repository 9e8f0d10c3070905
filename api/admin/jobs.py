"""Background jobs (role ops): list, inspect, replay dead ones."""

from __future__ import annotations

from flask.views import MethodView

from api.admin.schemas import JobQuerySchema, JobSchema
from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.idempotency import idempotent
from core.db import db
from core.outbox.models import OutboxJob
from domain.operators import jobs
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
    }


@blp.route("")
class Jobs(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(JobQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, JobSchema(many=True))
    def get(self, limit: int, status: str | None = None) -> list[dict]:
        """Jobs, newest first; `status=dead` lists the dead letters waiting for an operator."""
        return [job_body(j) for j in jobs.list_jobs(db.session(), status=status, limit=limit)]


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
        """Run a dead job again with fresh attempts; 409 `admin.job_not_dead` for any other state."""
        return job_body(jobs.replay(db.session(), actor=current_actor(), job_id=job_id))
