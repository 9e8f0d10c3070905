"""投诉 / 咨询: file one, follow its timeline, rate the answer."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, current_principal, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.i18n import language
from api.idempotency import idempotent
from api.schemas import StrictSchema
from core.db import db
from domain.complaints import service as complaints
from domain.complaints.models import CATEGORIES, KINDS, REPLY_RATINGS, STATUS_LABELS, Complaint

blp = Blueprint("complaints", __name__, url_prefix="/v1/complaints", description="投诉咨询 / Complaints")
blp.before_request(require_citizen)


class ComplaintCreateSchema(StrictSchema):
    kind = fields.String(required=True, metadata={"description": " | ".join(KINDS)})
    category = fields.String(required=True, metadata={"description": " | ".join(CATEGORIES)})
    text = fields.String(required=True)
    application_id = fields.String(load_default=None, validate=validate.Length(max=36))
    attachments = fields.List(
        fields.String(validate=validate.Length(max=36)),
        load_default=list,
        metadata={"description": "ids of files you uploaded for your applications"},
    )


class ReplyRatingSchema(StrictSchema):
    rating = fields.String(required=True, metadata={"description": "、".join(REPLY_RATINGS)})


class ComplaintEventSchema(StrictSchema):
    kind = fields.String()
    actor = fields.String()
    at = fields.DateTime()
    text = fields.String(allow_none=True)
    details = fields.Dict()


RATE_BY = (
    "While an answer awaits the citizen's rating: the last day to rate it (Beijing date, inclusive);"
    " unrated after it, the complaint is closed without a rating. Null otherwise."
)


class ComplaintSchema(StrictSchema):
    id = fields.String()
    tracking_no = fields.String()
    kind = fields.String()
    category = fields.String()
    status = fields.String()
    status_label = fields.String()
    text = fields.String()
    application_id = fields.String(allow_none=True)
    attachments = fields.List(fields.String())
    reply_rating = fields.String(allow_none=True)
    rate_by = fields.Date(allow_none=True, metadata={"description": RATE_BY})
    created_at = fields.DateTime()
    timeline = fields.List(fields.Nested(ComplaintEventSchema))


def view(complaint: Complaint, *, with_timeline: bool = True) -> dict:
    encryptor = services().encryptor
    zh, en = STATUS_LABELS[complaint.status]
    out = {
        "id": complaint.id,
        "tracking_no": complaint.tracking_no,
        "kind": complaint.kind,
        "category": complaint.category,
        "status": complaint.status,
        "status_label": en if language() == "en" else zh,
        "text": encryptor.decrypt(complaint.text_enc, purpose=complaints.PURPOSE),
        "application_id": complaint.application_id,
        "attachments": complaint.attachments,
        "reply_rating": complaint.reply_rating,
        "rate_by": complaint.rate_by,
        "created_at": complaint.created_at,
    }
    if with_timeline:
        out["timeline"] = complaints.timeline(db.session(), encryptor, complaint)
    return out


@blp.route("")
class Complaints(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ComplaintSchema(many=True))
    def get(self) -> list:
        """The citizen's complaints and consultations, newest first."""
        return [
            view(c, with_timeline=False)
            for c in complaints.mine(db.session(), current_principal().account_id)
        ]

    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ComplaintCreateSchema)
    @blp.response(201, ComplaintSchema)
    def post(self, body: dict) -> dict:
        """File a complaint or consultation; the answer gets a tracking number."""
        made = complaints.create(
            db.session(), services().encryptor, account_id=current_principal().account_id, **body
        )
        return view(made)


@blp.route("/<string:complaint_id>")
class OneComplaint(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ComplaintSchema)
    def get(self, complaint_id: str) -> dict:
        """One complaint with its timeline (submitted, replies, rating)."""
        return view(complaints.owned(db.session(), current_principal().account_id, complaint_id))


@blp.route("/<string:complaint_id>/rating")
class RateReply(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ReplyRatingSchema)
    @blp.response(200, ComplaintSchema)
    def post(self, body: dict, complaint_id: str) -> dict:
        """Rate the answer: 满意 / 基本满意 close it, 不满意 asks for another answer."""
        done = complaints.rate_reply(
            db.session(),
            account_id=current_principal().account_id,
            complaint_id=complaint_id,
            rating=body["rating"],
        )
        return view(done)
