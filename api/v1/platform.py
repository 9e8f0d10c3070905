"""Callbacks from the provincial platform: signed stage events (docs/province.md)."""

from __future__ import annotations

import hmac
import time
from datetime import datetime, timedelta, timezone

from flask import Response, current_app, request
from flask.views import MethodView

from api import json_body
from api.auth import public
from api.blueprint import Blueprint
from api.deps import services
from api.json_body import read_by_hand
from api.openapi_answers import INTEGER, STRING, json_answer, object_of
from core.db import db
from core.errors import Text
from domain.forwarding import events
from domain.forwarding.errors import BadEvent, CallbackUnauthenticated, UnknownProfile
from notifications import delivery

NONCE_RECORDED = "yiwang.callback_nonce_recorded"  # WSGI environ key; no client can set one

blp = Blueprint(
    "platform",
    __name__,
    url_prefix="/v1/platform",
    description="省级平台回调 / Provincial platform callbacks",
)


_CALLBACK_ENDPOINTS = ("platform.DefaultCallbacks", "platform.ProfileCallbacks")


@blp.after_request
def _signed(response: Response) -> Response:
    """Every answer to the province is signed, as its requests are (docs/province.md, "Signing
    (both directions)"): a province that verifies answers would otherwise take each one for a
    stranger's and post the event again. Not for a profile that is not configured (no key)."""
    from integrations.province import signing

    if request.endpoint not in _CALLBACK_ENDPOINTS:  # the SMS vendor's receipts are not the province's
        return response
    profile = services().forwarding.profile_named((request.view_args or {}).get("profile"))
    if profile is not None:
        response.headers.update(
            signing.sign_response(profile.credentials, response.status_code, response.get_data())
        )
    return response


def _receive(profile_name: str | None) -> dict:
    from integrations.province import signing

    deps = services().forwarding
    profile = deps.profile_named(profile_name)
    if profile is None:
        raise UnknownProfile()
    body = request.get_data(cache=False)
    try:
        signing.verify_request(
            profile.credentials, "POST", request.path, request.headers, body, now=time.time(), nonce_seen=None
        )  # fmt: skip
    except signing.SignatureError as exc:
        raise CallbackUnauthenticated(reason=exc.code) from None
    try:
        raw = json_body.loads(body)
    except ValueError:
        raise BadEvent(fields={"body": [Text("JSON expected", "应为 JSON")]}) from None
    # The nonce is recorded with the event (a replay is refused there), unless the fast path
    # (api/callbacks_fast_path.py) recorded it already before it handed the request on.
    nonce = None if request.environ.get(NONCE_RECORDED) else request.headers[signing.H_NONCE]
    # Kept now, applied by the forwarders' applier in order: the province is answered at once.
    outcome = events.store(db.session(), profile, raw, nonce=nonce)
    return {"code": "0", "result": outcome}


# The province's answer format: code "0" and what became of the event (stored, a repeat, ...).
_TAKEN = json_answer("the event was taken", object_of(code=STRING, result=STRING))


@blp.route("/callbacks")
class DefaultCallbacks(MethodView):
    @public
    @read_by_hand
    @blp.doc(responses={200: _TAKEN})
    @blp.response(200)
    def post(self) -> dict:
        """A stage event from the default province profile (signed; idempotent by event_id)."""
        return _receive(None)


@blp.route("/callbacks/<string:profile>")
class ProfileCallbacks(MethodView):
    @public
    @read_by_hand
    @blp.doc(responses={200: _TAKEN})
    @blp.response(200)
    def post(self, profile: str) -> dict:
        """A stage event from the named province profile."""
        return _receive(profile)


_BEIJING = timezone(timedelta(hours=8))


def _reported_at(value: object) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=_BEIJING)
    except ValueError:
        return None


@blp.route("/sms-receipts/<string:token>")
class SmsReceipts(MethodView):
    @public
    @read_by_hand
    @blp.doc(
        responses={
            200: json_answer(
                "reports taken (Tencent Cloud's answer format)",
                object_of(result=INTEGER, errmsg=STRING),
            )
        }
    )
    @blp.response(200)
    def post(self, token: str) -> dict:
        """Tencent Cloud SMS delivery reports (状态回执), a JSON array; repeats change nothing."""
        if not hmac.compare_digest(token.encode(), current_app.config["SMS_RECEIPT_TOKEN"].encode()):
            raise CallbackUnauthenticated(reason="token")
        reports = request.get_json(silent=True)
        if not isinstance(reports, list) or not all(isinstance(r, dict) and r.get("sid") for r in reports):
            raise BadEvent(
                fields={
                    "body": [
                        Text("a JSON array of reports with sid expected", "应为 JSON 数组，每条回执带 sid")
                    ]
                }
            )
        session = db.session()
        # All of the batch's locks first, in one order: two batches (a provider's retry) and a
        # sender recording the same messages never wait on each other in a circle.
        delivery.lock_reports(session, [("sms", str(r["sid"])[:128]) for r in reports])
        for report in reports:
            delivery.apply_receipt(
                session, channel="sms", provider_msg_id=str(report["sid"])[:128],
                delivered=report.get("report_status") == "SUCCESS",
                detail=f"{report.get('errmsg') or ''} {report.get('description') or ''}".strip(),
                reported_at=_reported_at(report.get("user_receive_time")),
            )  # fmt: skip
        session.commit()
        return {"result": 0, "errmsg": "OK"}
