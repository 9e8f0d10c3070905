"""The e-certificate wallet: list, show (masked; full to the owner, audited), file, QR presentation,
and the counter's check of a shown code (operators with the hall_officer role)."""

from __future__ import annotations

from flask import Response, g
from flask.views import MethodView
from marshmallow import fields, validate

from api.admin.security import current_operator, require_operator
from api.auth import BEARER_SECURITY, current_principal, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.i18n import language
from api.idempotency import idempotent
from api.openapi_answers import file_answer
from api.schemas import StrictSchema
from core.db import db
from domain.ledger.models import OPERATOR, VERIFIER
from domain.operators.errors import RoleRequired
from domain.operators.models import ROLE_CERT_VERIFIER, ROLE_HALL_OFFICER
from domain.wallet import presentations
from domain.wallet import service as wallet

blp = Blueprint(
    "certificates", __name__, url_prefix="/v1/certificates", description="电子证照 / E-certificates"
)
blp.before_request(require_citizen)

verifications = Blueprint(
    "certificate_verifications", __name__, url_prefix="/v1/certificate-verifications",
    description="亮证核验 / Checking a shown certificate",
)  # fmt: skip
verifications.before_request(require_operator)


@verifications.before_request
def _verifier_role() -> None:
    """Hall officers, and authorised third-party scanners (role certificate_verifier)."""
    operator = current_operator()
    if not (operator.has_role(ROLE_HALL_OFFICER) or operator.has_role(ROLE_CERT_VERIFIER)):
        raise RoleRequired(role=ROLE_HALL_OFFICER)


BLUEPRINTS = [blp, verifications]


class CertificateSchema(StrictSchema):
    id = fields.String()
    identifier = fields.String(metadata={"description": "GB/T 36901 identifier"})
    type_code = fields.String()
    type_name = fields.String()
    issuer = fields.String()
    holder_name = fields.String(metadata={"description": "masked unless revealed"})
    number = fields.String(metadata={"description": "masked unless revealed"})
    own = fields.Boolean(metadata={"description": "false: a minor child's certificate"})
    state = fields.String(metadata={"description": "01 有效, 02 暂扣, 03 撤销, 04 注销, 05 失效, 07 吊销"})
    state_name = fields.String()
    usable = fields.Boolean(metadata={"description": "valid now: may be shown and used for materials"})
    issued_on = fields.String(allow_none=True)
    valid_until = fields.String(allow_none=True)
    synced_at = fields.String()
    data = fields.Dict(metadata={"description": "structured data (only with reveal=true)"})


class WalletSchema(StrictSchema):
    certificates = fields.List(fields.Nested(CertificateSchema))
    stale = fields.Boolean(metadata={"description": "the library did not answer: last known states"})


class RevealArgs(StrictSchema):
    reveal = fields.Boolean(load_default=False)


class FileArgs(StrictSchema):
    format = fields.String(load_default="pdf", validate=validate.OneOf(("pdf", "ofd")))


class PresentationSchema(StrictSchema):
    token = fields.String(metadata={"description": "show as a QR code; single use"})
    expires_at = fields.String()
    ttl = fields.Integer()
    certificate = fields.Nested(CertificateSchema)


class VerifyBodySchema(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=20, max=2000))


class VerifiedSchema(StrictSchema):
    valid = fields.Boolean()
    checked_live = fields.Boolean(metadata={"description": "false: the library was down, last known state"})
    checked_at = fields.String()
    certificate = fields.Nested(CertificateSchema)


def _rid() -> str | None:
    return g.get("request_id")


@blp.route("")
class Wallet(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, WalletSchema)
    def get(self) -> dict:
        """My certificates (and my minor children's), read from the e-certificate library."""
        return wallet.list_certificates(
            db.session(), services().govdata, account_id=current_principal().account_id, lang=language(),
            request_id=_rid(),
        )  # fmt: skip


@blp.route("/<string:cert_id>")
class OneCertificate(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(RevealArgs, location="query")
    @blp.response(200, CertificateSchema)
    def get(self, args: dict, cert_id: str) -> dict:
        """One certificate, state read live; `reveal=true` shows the full data (audited)."""
        return wallet.show(
            db.session(), services().govdata, account_id=current_principal().account_id, cert_id=cert_id,
            reveal=args["reveal"], lang=language(), request_id=_rid(),
        )  # fmt: skip


@blp.route("/<string:cert_id>/file")
class CertificateFile(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: file_answer("the file, as an attachment", "application/pdf", "application/ofd")},
    )
    @blp.arguments(FileArgs, location="query")
    @blp.response(200)
    def get(self, args: dict, cert_id: str) -> Response:
        """The certificate's file (PDF or OFD) from the library (audited)."""
        content, media_type = wallet.certificate_file(
            db.session(), services().govdata, account_id=current_principal().account_id, cert_id=cert_id,
            fmt=args["format"], request_id=_rid(),
        )  # fmt: skip
        resp = Response(content, mimetype=media_type)
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Content-Disposition"] = f'attachment; filename="certificate.{args["format"]}"'
        return resp


@blp.route("/<string:cert_id>/presentations")
class Presentations(MethodView):
    @idempotent(ttl=300)
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(201, PresentationSchema)
    def post(self, cert_id: str) -> dict:
        """A single-use code to show at a counter (亮证), valid for at most 5 minutes."""
        return presentations.present(
            db.session(), services().govdata, account_id=current_principal().account_id, cert_id=cert_id,
            lang=language(), request_id=_rid(),
        )  # fmt: skip


@verifications.route("")
class Verify(MethodView):
    @idempotent
    @verifications.doc(security=BEARER_SECURITY)
    @verifications.arguments(VerifyBodySchema)
    @verifications.response(200, VerifiedSchema)
    def post(self, body: dict) -> dict:
        """Check a shown code once: whose certificate, which, and its state in the library now."""
        operator = current_operator()
        hall = operator.has_role(ROLE_HALL_OFFICER)
        return presentations.verify(
            db.session(), services().govdata, token=body["token"],
            verifier_type=OPERATOR if hall else VERIFIER, verifier_id=operator.operator_id,
            verifier_name=f"窗口工作人员 {operator.username}" if hall else f"授权核验方 {operator.username}",
            request_id=_rid(), lang=language(),
        )  # fmt: skip
