"""Applications for phones: drafts with prefill, autosave, materials, submission, lists, timeline."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask.views import MethodView
from marshmallow import fields, validate, validates_schema
from marshmallow.exceptions import ValidationError

from api.auth import BEARER_SECURITY, cached_views, current_principal, reads_cached, require_citizen, scope
from api.blueprint import Blueprint
from api.deps import services
from api.errors import BadIfMatch
from api.i18n import language
from api.idempotency import idempotent
from api.middleware import client_ip
from api.schemas import JsonBoolean, StrictSchema
from api.v1.application_schemas import (
    ApplicationSchema,
    DataSharingSchema,
    FileSchema,
    FormSchema,
    ListSchema,
    ReusableSchema,
    TimelineSchema,
)
from api.v1.application_uploads import file_body, upload_bytes
from core.db import db
from core.errors import Text
from domain.accounts.profile_cache import ProfileCache
from domain.applications import detail_view, drafts, materials, service, submission, views
from domain.applications.deps import ApplicationDeps
from domain.applications.errors import PreconditionRequired, RevisionRequired
from domain.applications.models import Application
from domain.applications.states import STATUSES
from domain.shared_data import service as sharing

blp = Blueprint(
    "applications", __name__, url_prefix="/v1/applications", description="办事申请 / Applications"
)
blp.before_request(require_citizen)


class CreateSchema(StrictSchema):
    service_code = fields.String(validate=validate.Length(min=1, max=31))
    bundle_id = fields.String(
        validate=validate.Length(min=1, max=32), metadata={"description": "a bundle (一件事) code"}
    )

    @validates_schema
    def _one(self, data: dict, **_: Any) -> None:
        if bool(data.get("service_code")) == bool(data.get("bundle_id")):
            raise ValidationError(
                Text(
                    "Give exactly one of service_code or bundle_id",
                    "请给出 service_code 或 bundle_id 中的一项",
                ),
                "_schema",
            )


class PatchSchema(StrictSchema):
    data = fields.Dict(
        required=True,
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        metadata={"description": "JSON merge patch (RFC 7396) of the form data; null removes a field"},
    )


class ShareConsentSchema(StrictSchema):
    accepted = JsonBoolean(required=True)
    text_version = fields.String(required=True, validate=validate.Length(max=32))


class SubmitSchema(StrictSchema):
    consent = fields.Nested(ShareConsentSchema, metadata={"description": "required on the first submission"})


class WithdrawSchema(StrictSchema):
    reason = fields.String(validate=validate.Length(max=500))


class ListQuerySchema(StrictSchema):
    status = fields.List(
        fields.String(),
        metadata={"description": f"repeated or comma-separated (any of them), of: {', '.join(STATUSES)}"},
    )
    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


_LIST_QUERY = ListQuerySchema()  # one instance: the phone's most frequent request builds no schema


class ReuseSchema(StrictSchema):
    file_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


def _deps() -> ApplicationDeps:
    return services().applications


def _if_match() -> tuple[int, ...]:
    """The revisions If-Match names (RFC 9110: one ETag or a list; any of them may match)."""
    raw = request.headers.get("If-Match")
    if not raw or not raw.strip():
        raise PreconditionRequired()
    if raw.strip() == "*":  # "any version" would let an autosave overwrite another device's
        raise RevisionRequired()
    revisions = []
    # RFC 9110 lists may hold empty elements ("r1", ); a value naming no revision at all is a
    # 400 saying what an ETag looks like, not a 428 asking for the header the client sent.
    for tag in [t for t in raw.split(",") if t.strip()][:20]:
        # Compression layers rewrite a strong ETag ("r3" -> "r3:gzip" or "r3-gzip"); the
        # revision is what counts.
        value = tag.strip().removeprefix("W/").strip('"').removeprefix("r").split(":")[0].split("-")[0]
        if not (value.isascii() and value.isdigit()) or len(value) > 9:  # not "³": int() refuses it
            raise BadIfMatch()
        revisions.append(int(value))
    if not revisions:
        raise BadIfMatch()
    return tuple(revisions)


def _detail(body: bytes, etag: str | None, status: int = 200) -> Response:
    resp = Response(body, status, mimetype="application/json")
    if etag is not None:  # None: a reader that cannot write gets no If-Match value
        resp.headers["ETag"] = etag
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _full(app: Application, status: int = 200, *, known: submission.Submitted | None = None) -> Response:
    body = detail_view.render(db.session(), _deps(), app, lang=language(), known=known)
    return _detail(body, detail_view.etag(app), status)


def _detail_key(_account_id: str) -> str:
    """The cached view this request reads (fetched with the token check)."""
    return ProfileCache.application_key((request.view_args or {}).get("app_id", ""), language())


@blp.route("")
class Applications(MethodView):
    @scope("applications.read")
    @reads_cached("applications")
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(_LIST_QUERY, location="query")
    @blp.response(200, ListSchema)
    def get(self, query: dict) -> Response:
        """The citizen's applications, newest first (cursor pagination, compact items); a case
        that changes while the citizen pages keeps its place."""
        # `status=a,b` and `status=a&status=b` ask for the same thing.
        statuses = [s.strip() for raw in query.get("status", ()) for s in raw.split(",") if s.strip()]
        body = views.listing(
            db.reader, account_id=current_principal().account_id, statuses=statuses,
            cursor=query.get("cursor"), limit=query["limit"], lang=language(), cache=cached_views(),
        )  # fmt: skip
        # The JSON body as the domain rendered (or cached) it: no second pass through the schema.
        return Response(body, mimetype="application/json")

    @idempotent
    @scope("applications.write")
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(CreateSchema)
    @blp.response(201, ApplicationSchema)
    def post(self, body: dict) -> Response:
        """Start a draft pinned to the item's (or bundle's items') current version, prefilled."""
        p = current_principal()
        app = drafts.create(
            db.session(), _deps(), account_id=p.account_id, channel=p.channel,
            service_code=body.get("service_code"), bundle_code=body.get("bundle_id"),
            request_id=g.get("request_id"),
        )  # fmt: skip
        return _full(app, 201)


@blp.route("/<string:app_id>")
class ApplicationItem(MethodView):
    @scope("applications.read")
    @reads_cached(_detail_key)
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ApplicationSchema)
    def get(self, app_id: str) -> Response:
        """Data (prefilled values masked), provenance, materials and what satisfies them, status, due date.

        The ETag (`"r<revision>"`) is what an autosave sends back in If-Match. A third-party app
        holding `applications.read` without `applications.write` gets the case and its progress
        only: no `data` or `provenance`, of each satisfying material only its `kind` and
        `attached_at`, and no ETag (it can make no write to base on it)."""
        p = current_principal()
        body, etag = detail_view.load(
            db.session, _deps(), cached_views(), account_id=p.account_id, app_id=app_id, lang=language()
        )
        if not detail_view.shows_form(third_party=p.third_party, scopes=p.scopes):
            # The revision validates writes, and this reader may make none; nor does it change
            # with everything the progress view shows (a material attached), so it is no cache
            # validator for it either. The view is not kept (no-store), so nothing revalidates.
            return _detail(detail_view.progress_only(body), None)
        return _detail(body, etag)

    @scope("applications.write")
    @blp.doc(
        security=BEARER_SECURITY,
        parameters=[{
            "in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"},
            "description": "the ETag of the revision this change is based on (\"r3\"; a list may name"
                           " several); a stale one gets 412, \"*\" 428, one that is no ETag 400",
        }],
    )  # fmt: skip
    @blp.arguments(PatchSchema)
    @blp.response(200, ApplicationSchema)
    def patch(self, body: dict, app_id: str) -> Response:
        """Autosave (JSON merge patch of `data`). A stale If-Match gets 412 with the current revision."""
        if_match = _if_match()
        app = drafts.patch(
            db.session(), _deps(), account_id=current_principal().account_id, app_id=app_id,
            if_match=if_match, data_patch=body["data"],
        )  # fmt: skip
        return _full(app)

    @idempotent
    @scope("applications.write")
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def delete(self, app_id: str) -> None:
        """Discard a draft (submitted applications are withdrawn instead)."""
        drafts.delete_draft(db.session(), account_id=current_principal().account_id, app_id=app_id)


@blp.route("/<string:app_id>/form")
class ApplicationForm(MethodView):
    @scope("applications.read")
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, FormSchema)
    def get(self, app_id: str) -> dict:
        """The form of the pinned version(s): JSON Schema, UI hints, prefill bindings."""
        return views.form(db.session(), service.owned(db.session(), current_principal().account_id, app_id))


@blp.route("/<string:app_id>/submit")
class Submit(MethodView):
    @idempotent(required=True)
    @scope("applications.write")
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(SubmitSchema)
    @blp.response(200, ApplicationSchema)
    def post(self, body: dict, app_id: str) -> Response:
        """Submit (or resubmit after a supplement request). Every problem comes back at once (422)."""
        p = current_principal()
        done = submission.submit(
            db.session(), _deps(), account_id=p.account_id, app_id=app_id, consent=body.get("consent"),
            channel=p.channel, ip=client_ip(), request_id=g.get("request_id"),
        )  # fmt: skip
        return _full(done.app, known=done)  # rendered from what the submission read, not read again


@blp.route("/<string:app_id>/data-sharing")
class DataSharing(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(DataSharingSchema)
    @blp.response(200, ApplicationSchema)
    def post(self, body: dict, app_id: str) -> Response:
        """Authorise fetching shared government data and e-certificates for this draft (统一受理、平台授权).

        Fields bound to shared data are filled (verified, read-only) and materials that a shared
        record or a valid certificate stands in for are satisfied; conditional data the owning
        department must approve shows as pending and fills in when it arrives.
        """
        p = current_principal()
        app = sharing.authorize(
            db.session(), services().govdata, account_id=p.account_id, app_id=app_id,
            accepted=body["accepted"], text_version=body["text_version"], channel=p.channel, ip=client_ip(),
            request_id=g.get("request_id"),
        )  # fmt: skip
        return _full(app)


@blp.route("/<string:app_id>/withdraw")
class Withdraw(MethodView):
    @idempotent
    @scope("applications.write")
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(WithdrawSchema)
    @blp.response(200, ApplicationSchema)
    def post(self, body: dict, app_id: str) -> Response:
        """Withdraw before the department accepts the case."""
        app = submission.withdraw(
            db.session(), services().applications, account_id=current_principal().account_id, app_id=app_id,
            reason=body.get("reason"), request_id=g.get("request_id"),
        )  # fmt: skip
        return _full(app)


@blp.route("/<string:app_id>/timeline")
class Timeline(MethodView):
    @scope("applications.read")
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, TimelineSchema)
    def get(self, app_id: str) -> dict:
        """Every status change with time, actor and note (e.g. what a supplement request asks for)."""
        p = current_principal()
        app = service.owned(db.session(), p.account_id, app_id)
        mine = detail_view.shows_form(third_party=p.third_party, scopes=p.scopes)
        return {"events": views.timeline(db.session(), app, lang=language(), citizen_notes=mine)}


@blp.route("/<string:app_id>/materials/<string:material_id>/files")
class MaterialFiles(MethodView):
    @idempotent
    @scope("applications.write")
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(201, FileSchema)
    def post(self, app_id: str, material_id: str) -> dict:
        """Upload a file for a material (JPEG, PNG, PDF or OFD by content; EXIF removed; SHA-256 kept)."""
        deps = _deps()
        data, name = upload_bytes(deps.max_file_bytes)
        row = materials.upload(
            db.session(), deps, account_id=current_principal().account_id, app_id=app_id,
            material_id=material_id, data=data, filename=name, request_id=g.get("request_id"),
        )  # fmt: skip
        return file_body(row)

    @scope("applications.write")  # for reusing one (a write); read access alone sees no files
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ReusableSchema)
    def get(self, app_id: str, material_id: str) -> dict:
        """Earlier uploads of this account for the same material, which can be reused."""
        rows = materials.reusable(
            db.session(), account_id=current_principal().account_id, app_id=app_id, material_id=material_id
        )
        return {"reusable": [file_body(r) for r in rows]}


@blp.route("/<string:app_id>/materials/<string:material_id>/reuse")
class MaterialReuse(MethodView):
    @idempotent
    @scope("applications.write")
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ReuseSchema)
    @blp.response(200, ApplicationSchema)
    def post(self, body: dict, app_id: str, material_id: str) -> Response:
        """Satisfy a material with a file this account uploaded for an earlier application."""
        materials.reuse(
            db.session(), _deps(), account_id=current_principal().account_id, app_id=app_id,
            material_id=material_id, file_id=body["file_id"],
        )  # fmt: skip
        return _full(service.owned(db.session(), current_principal().account_id, app_id))


@blp.route("/<string:app_id>/materials/<string:material_id>/files/<string:file_id>")
class MaterialFile(MethodView):
    @idempotent
    @scope("applications.write")
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(204)
    def delete(self, app_id: str, material_id: str, file_id: str) -> None:
        """Remove a file from a material (the file itself is swept later if nothing uses it)."""
        materials.detach(
            db.session(), _deps(), account_id=current_principal().account_id, app_id=app_id,
            material_id=material_id, file_id=file_id,
        )  # fmt: skip
