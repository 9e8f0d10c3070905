"""The audit trail (role auditor): filter and page through audit events."""

from __future__ import annotations

from datetime import datetime

from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from api.admin.schemas import AuditEventSchema, AuditQuerySchema
from api.admin.security import BEARER_SECURITY, require_operator, role_guard
from api.blueprint import Blueprint
from core.db import db
from domain.operators import audit_log
from domain.operators.models import ROLE_AUDITOR

blp = Blueprint("admin_audit", __name__, url_prefix="/admin/v1/audit", description="审计日志 / Audit trail")
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_AUDITOR))


@blp.route("")
class AuditEvents(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(AuditQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, AuditEventSchema(many=True))
    @blp.paginate(page_size=50, max_page_size=200)
    def get(
        self,
        pagination_parameters: PaginationParameters,
        actor_id: str | None = None,
        action: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list:
        """Audit events, newest first; the X-Pagination header carries the totals.

        Each request here adds an event of its own on top, so `page=2` can repeat the last
        event of page 1: to go on without repeats, pass that event's id as `before` (the totals
        then count the events after it)."""
        rows, total = audit_log.list_events(
            db.session(), actor_id=actor_id, action=action, target_id=target_id, since=since, before=before,
            # A page far beyond the end is empty; the offset stays within a database integer.
            offset=min(pagination_parameters.first_item, 2**62), limit=pagination_parameters.page_size,
        )  # fmt: skip
        pagination_parameters.item_count = total
        return rows
