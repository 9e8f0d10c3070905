"""Forwarding to the province (role ops): queue figures, dead letters, corrections, replays."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from marshmallow import ValidationError, fields, validate, validates

from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.openapi_answers import INTEGER, OBJECT, STRING, array_of, json_answer, object_of, text_answer
from api.schemas import StrictSchema
from core.db import db
from core.errors import Text
from domain.applications.models import ForwardingOutbox
from domain.forwarding import delivery, operations, reconcile
from domain.operators.models import ROLE_OPS

blp = Blueprint(
    "admin_forwarding", __name__, url_prefix="/admin/v1/forwarding", description="省平台转发 / Forwarding"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_OPS))

# Keys an operator may not override: the case's identity at the province and the applicant.
PROTECTED_KEYS = ("sblsh", "version", "action", "applicant", "item_code")


class RowQuerySchema(StrictSchema):
    state = fields.String(
        validate=validate.OneOf((*delivery.ACTIVE, delivery.DELIVERED, delivery.DEAD, delivery.CANCELLED))
    )
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class CorrectionSchema(StrictSchema):
    overrides = fields.Dict(
        required=True, allow_none=True,
        metadata={"description": "laid over the upstream body, e.g. {\"form\": {\"field\": \"value\"}}"},
    )  # fmt: skip

    @validates("overrides")
    def _keys(self, value: dict | None, **_: object) -> None:
        bad = sorted(set(value or {}) & set(PROTECTED_KEYS))
        if bad:
            listed = ", ".join(bad)
            raise ValidationError(
                Text(f"these keys cannot be overridden: {listed}", f"以下键不可覆盖：{listed}")
            )
        for name in ("form", "applicant"):  # objects in the body: a correction keeps them so
            if name in (value or {}) and not isinstance(value[name], dict):
                raise ValidationError(Text(f"{name} must be an object", f"{name} 须为对象"))


class UnconfirmedQuerySchema(StrictSchema):
    older_than = fields.Integer(load_default=0, validate=validate.Range(min=0, max=90 * 86400))


class RowSchema(StrictSchema):
    """A forwarding row as operators see it (times in ISO 8601, like every other answer)."""

    id = fields.String()
    application_id = fields.String()
    case_number = fields.String(metadata={"description": "办件编号"})
    kind = fields.String(metadata={"description": "submit, resubmit or withdraw"})
    version = fields.Integer(metadata={"description": "the application's submission version"})
    profile = fields.String(metadata={"description": "the province profile it is sent with"})
    state = fields.String()
    attempts = fields.Integer()
    created_at = fields.DateTime()
    next_attempt_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    replayed_at = fields.DateTime(allow_none=True)
    receipt_no = fields.String(allow_none=True)
    last_error = fields.String(
        allow_none=True, metadata={"description": "the province's reason (no personal data)"}
    )
    overrides = fields.Dict(allow_none=True)


class RowPageSchema(StrictSchema):
    items = fields.List(fields.Nested(RowSchema))
    next_cursor = fields.String(allow_none=True)


def row_body(row: ForwardingOutbox) -> dict:
    return {
        "id": row.id, "application_id": row.application_id, "case_number": row.case_number,
        "kind": row.kind, "version": row.submission_version, "profile": row.profile, "state": row.state,
        "attempts": row.attempts, "created_at": row.created_at, "next_attempt_at": row.next_attempt_at,
        "sent_at": row.sent_at, "delivered_at": row.delivered_at, "replayed_at": row.replayed_at,
        "receipt_no": row.receipt_no, "last_error": row.last_error, "overrides": row.overrides,
    }  # fmt: skip


def _breaker() -> dict:
    forwarder = services().forwarding.forwarder()
    try:
        return forwarder.breaker.state() if forwarder.breaker else {"state": "unavailable"}
    except Exception:  # Redis away: the figures from the database still help
        return {"state": "unknown"}


_STATS = object_of(
    queue_depth=INTEGER, by_state={"type": "object", "additionalProperties": INTEGER},
    oldest_pending_seconds=INTEGER, retrying=INTEGER, retried_in_queue=INTEGER, dead_letters=INTEGER,
    events_waiting=INTEGER, circuit=OBJECT | {"description": "the circuit breaker's state"},
)  # fmt: skip
_UNCONFIRMED = object_of(count=INTEGER, items=array_of())
_RECONCILED = object_of(
    asked=INTEGER, events_added=INTEGER, receipts_found=INTEGER, resent=INTEGER, unknown=INTEGER,
    errors=INTEGER, cases=array_of(STRING),
)  # fmt: skip


@blp.route("/stats")
class Stats(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: json_answer("queue figures", _STATS)})
    @blp.response(200)
    def get(self) -> dict:
        """Queue depth, oldest pending age, retries, dead letters, waiting events, circuit state."""
        return {**operations.stats(db.session()), "circuit": _breaker()}


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: text_answer("Prometheus text exposition", "text/plain; version=0.0.4")},
    )
    def get(self) -> Response:
        """The same figures in the Prometheus text format."""
        s = operations.stats(db.session())
        lines = [
            "# TYPE yiwang_forwarding_queue_depth gauge",
            f"yiwang_forwarding_queue_depth {s['queue_depth']}",
            "# TYPE yiwang_forwarding_oldest_pending_seconds gauge",
            f"yiwang_forwarding_oldest_pending_seconds {s['oldest_pending_seconds']}",
            "# TYPE yiwang_forwarding_rows gauge",
            *(f'yiwang_forwarding_rows{{state="{k}"}} {v}' for k, v in s["by_state"].items()),
            "# TYPE yiwang_forwarding_retried_in_queue gauge",
            f"yiwang_forwarding_retried_in_queue {s['retried_in_queue']}",
            "# TYPE yiwang_forwarding_events_waiting gauge",
            f"yiwang_forwarding_events_waiting {s['events_waiting']}",
        ]
        # The circuit breaker, as /stats shows it: alerting must see the province cut off. One
        # series per state (1 for the current one); none when Redis cannot say.
        circuit = _breaker()
        if circuit.get("state") in ("closed", "open", "half_open"):
            lines += [
                "# TYPE yiwang_forwarding_circuit gauge",
                *(
                    f'yiwang_forwarding_circuit{{state="{k}"}} {int(circuit["state"] == k)}'
                    for k in ("closed", "open", "half_open")
                ),
                "# TYPE yiwang_forwarding_circuit_failures gauge",
                f"yiwang_forwarding_circuit_failures {circuit.get('failures', 0)}",
            ]
        return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


@blp.route("/rows")
class Rows(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(RowQuerySchema, location="query")
    @blp.response(200, RowPageSchema)
    def get(self, query: dict) -> dict:
        """Forwarding rows, newest first; `state=dead` lists the dead letters.

        Cursor pagination: pass the page's `next_cursor` as `cursor` for the next page (`null`
        on the last); a malformed cursor is 400 `forwarding.bad_cursor`.
        """
        rows, next_cursor = operations.rows(
            db.session(), state=query.get("state"), cursor=query.get("cursor"), limit=query["limit"]
        )
        return {"items": [row_body(r) for r in rows], "next_cursor": next_cursor}


@blp.route("/rows/<string:row_id>")
class Row(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, RowSchema)
    def get(self, row_id: str) -> dict:
        """One row with the province's reason (no personal data)."""
        return row_body(operations.get(db.session(), row_id))

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(CorrectionSchema)
    @blp.response(200, RowSchema)
    def patch(self, body: dict, row_id: str) -> dict:
        """Correct a dead letter: fields laid over the upstream body when it is replayed."""
        row = operations.correct(
            db.session(), row_id, overrides=body["overrides"], operator_id=current_actor().id
        )
        return row_body(row)


@blp.route("/rows/<string:row_id>/replay")
class Replay(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, RowSchema)
    def post(self, row_id: str) -> dict:
        """Send a dead letter again with fresh attempts."""
        return row_body(operations.replay(db.session(), row_id, operator_id=current_actor().id))


@blp.route("/unconfirmed")
class Unconfirmed(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: json_answer("cases the province has not confirmed", _UNCONFIRMED)},
    )
    @blp.arguments(UnconfirmedQuerySchema, location="query")
    @blp.response(200)
    def get(self, query: dict) -> dict:
        """Submitted but not yet confirmed by the province (the daily report)."""
        items = reconcile.unconfirmed(db.session(), older_than=query["older_than"])
        return {"count": len(items), "items": items}


@blp.route("/reconcile")
class Reconcile(MethodView):
    @idempotent
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: json_answer("what the round found and repaired", _RECONCILED)},
    )
    @blp.response(200)
    def post(self) -> dict:
        """Ask the province about quiet cases now and repair what callbacks missed."""
        deps = services().forwarding
        quiet = float(deps.config.get("RECONCILE_AFTER", 3600.0))
        report = reconcile.reconcile(db.session(), deps.profile(), deps.client(), quiet_after=quiet)
        return {k: v for k, v in vars(report).items()}
