"""Complaints and consultations for operators (role case_operator): the queue, reading, replying."""

from __future__ import annotations

from flask import Response, current_app, g
from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import BEARER_SECURITY, current_actor, current_scope, require_operator, role_guard
from api.blueprint import Blueprint
from api.deps import services
from api.idempotency import idempotent
from api.openapi_answers import file_answer
from api.schemas import StrictSchema
from api.v1.complaints import RATE_BY
from core.db import db
from domain.complaints import evidence
from domain.complaints import service as complaints
from domain.operators.models import ROLE_CASE_OPERATOR
from notifications.complaints import tell_answered

blp = Blueprint(
    "admin_complaints", __name__, url_prefix="/admin/v1/complaints", description="投诉咨询 / Complaints"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_CASE_OPERATOR))


class ComplaintQueueItemSchema(StrictSchema):
    id = fields.String()
    tracking_no = fields.String()
    kind = fields.String()
    category = fields.String()
    status = fields.String()
    application_id = fields.String(allow_none=True)
    department_code = fields.String(
        allow_none=True,
        metadata={
            "description": "the department of the related case's (first) item; a bundle's other "
            "departments see the complaint too; null without a case"
        },
    )
    created_at = fields.DateTime()


class QueueQuerySchema(StrictSchema):
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class ComplaintQueuePageSchema(StrictSchema):
    items = fields.List(fields.Nested(ComplaintQueueItemSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


class TimelineEventSchema(StrictSchema):
    kind = fields.String(metadata={"description": "submitted, replied, rated, closed"})
    actor = fields.String(
        metadata={"description": "citizen, operator, or system (closed unrated after its rating period)"}
    )
    at = fields.DateTime()
    text = fields.String(allow_none=True, metadata={"description": "an answer's text"})
    details = fields.Dict(
        metadata={
            "description": "a rating's `rating`; a closure's `reason` (`not_rated`: unrated past `rate_by`)"
        }
    )


class ComplaintDetailSchema(ComplaintQueueItemSchema):
    text = fields.String()
    attachments = fields.List(fields.String())
    reply_rating = fields.String(allow_none=True)
    rate_by = fields.Date(allow_none=True, metadata={"description": RATE_BY})
    timeline = fields.List(
        fields.Nested(TimelineEventSchema),
        metadata={"description": "the earlier answers and their ratings, for the next round's answer"},
    )


class ComplaintReplySchema(StrictSchema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=2000))


@blp.route("")
class Queue(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(QueueQuerySchema, location="query")
    @blp.response(200, ComplaintQueuePageSchema)
    def get(self, query: dict) -> dict:
        """Complaints and consultations waiting for an answer, oldest first (no texts: open one to read).

        Cursor pagination: pass the page's `next_cursor` as `cursor` for the next page (`null`
        on the last); a malformed cursor is 400 `complaints.bad_cursor`. An operator tied to
        departments sees only the complaints about cases one of whose items their departments
        handle (not those without a related case).
        """
        items, next_cursor = complaints.open_queue(
            db.session(), cursor=query.get("cursor"), limit=query["limit"], scope=current_scope()
        )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/<string:complaint_id>")
class Detail(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ComplaintDetailSchema)
    def get(self, complaint_id: str) -> dict:
        """One complaint with its text and timeline (the earlier answers and ratings); the read is
        audited. Another department's complaint is 404 `complaints.not_found` to an operator tied
        to departments."""
        session = db.session()
        complaint, text = complaints.read_for_operator(
            session,
            services().encryptor,
            complaint_id=complaint_id,
            operator_id=str(current_actor().id),
            request_id=g.get("request_id"),
            scope=current_scope(),
        )
        shown = set(ComplaintDetailSchema().fields) - {"text", "timeline"}
        return {
            **{k: getattr(complaint, k) for k in shown},
            "text": text,
            "timeline": complaints.timeline(session, services().encryptor, complaint),
        }


@blp.route("/<string:complaint_id>/attachments/<string:file_id>")
class Attachment(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: file_answer("the file the citizen attached, as uploaded (EXIF removed from images)",
                                    "image/jpeg", "image/png", "application/pdf", "application/ofd")},
    )  # fmt: skip
    @blp.response(200)
    def get(self, complaint_id: str, file_id: str) -> Response:
        """One of the complaint's attachments (ids in the complaint's `attachments`); the read is
        audited. 404 `complaints.not_found` for a complaint the operator may not read, 404
        `complaints.attachment_not_found` for a file the complaint does not hold."""
        found = evidence.open_for_operator(
            db.session(), services().applications, complaint_id=complaint_id, file_id=file_id,
            operator_id=str(current_actor().id), request_id=g.get("request_id"), scope=current_scope(),
        )  # fmt: skip
        resp = Response(found.content, mimetype=found.media_type)
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Content-Disposition"] = "attachment"
        return resp


@blp.route("/<string:complaint_id>/reply")
class Reply(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ComplaintReplySchema)
    @blp.response(200, ComplaintQueueItemSchema)
    def post(self, body: dict, complaint_id: str) -> object:
        """Answer; the citizen is notified and can rate the answer. Another department's
        complaint is 404 `complaints.not_found` to an operator tied to departments."""
        session = db.session()
        complaint = complaints.reply(
            session,
            services().encryptor,
            complaint_id=complaint_id,
            text=body["text"],
            operator_id=str(current_actor().id),
            scope=current_scope(),
            rate_days=current_app.config["COMPLAINT_RATE_DAYS"],
        )
        replies = complaints.replies(session, complaint.id)
        tell_answered(
            session, services().notifications.settings, complaint,
            dedupe_key=f"complaint:{complaint.id}:reply:{replies}",
        )  # fmt: skip
        session.commit()
        return complaint
