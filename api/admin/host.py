"""This host's own state (role ops): what waits on its local disk for the database."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from api.admin.security import BEARER_SECURITY, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.openapi_answers import text_answer
from domain.operators.models import ROLE_OPS

blp = Blueprint("admin_host", __name__, url_prefix="/admin/v1/host", description="本机状态 / This host")
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_OPS))


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: text_answer("Prometheus text exposition", "text/plain; version=0.0.4")},
    )
    def get(self) -> Response:
        """The data-use ledger spool of the host that answers, in the Prometheus text format:
        segments holding lines not yet inserted (every process of the host), their bytes, and
        seconds since the oldest of them was last written (0 when none wait). Scrape each host."""
        spool = services().ledger_lines
        waiting = spool.backlog()
        lines = [
            "# HELP yiwang_ledger_spool_segments Segment files on this host with lines not yet inserted.",
            "# TYPE yiwang_ledger_spool_segments gauge",
            f"yiwang_ledger_spool_segments {waiting.segments}",
            "# TYPE yiwang_ledger_spool_bytes gauge",
            f"yiwang_ledger_spool_bytes {waiting.bytes}",
            "# HELP yiwang_ledger_spool_oldest_seconds Seconds since the oldest waiting segment was written.",
            "# TYPE yiwang_ledger_spool_oldest_seconds gauge",
            f"yiwang_ledger_spool_oldest_seconds {waiting.oldest_seconds}",
            "# HELP yiwang_ledger_spool_accepting 0 while this process refuses app access it cannot record.",
            "# TYPE yiwang_ledger_spool_accepting gauge",
            f"yiwang_ledger_spool_accepting {int(spool.accepting())}",
        ]
        return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
