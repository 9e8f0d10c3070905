"""Callbacks from the provincial platform: signed stage events (docs/province.md)."""

from __future__ import annotations

import json
import time

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import public
from api.deps import services
from core.db import db
from domain.forwarding import events
from domain.forwarding.errors import BadEvent, CallbackUnauthenticated, UnknownProfile

blp = Blueprint(
    "platform",
    __name__,
    url_prefix="/v1/platform",
    description="省级平台回调 / Provincial platform callbacks",
)


def _receive(profile_name: str | None) -> dict:
    from integrations.province import signing

    deps = services().forwarding
    profile = deps.profile_named(profile_name)
    if profile is None:
        raise UnknownProfile()
    body = request.get_data(cache=False)
    try:
        signing.verify_request(
            profile.credentials, "POST", request.path, request.headers, body, now=time.time(),
            nonce_seen=deps.nonce_seen,
        )  # fmt: skip
    except signing.SignatureError as exc:
        raise CallbackUnauthenticated(reason=exc.code) from None
    try:
        raw = json.loads(body)
    except ValueError:
        raise BadEvent(fields={"body": ["JSON expected"]}) from None
    # Kept now, applied by the forwarders' applier in order: the province is answered at once.
    outcome = events.store(db.session(), profile, raw)
    return {"code": "0", "result": outcome}


@blp.route("/callbacks")
class DefaultCallbacks(MethodView):
    @public
    @blp.response(200)
    def post(self) -> dict:
        """A stage event from the default province profile (signed; idempotent by event_id)."""
        return _receive(None)


@blp.route("/callbacks/<string:profile>")
class ProfileCallbacks(MethodView):
    @public
    @blp.response(200)
    def post(self, profile: str) -> dict:
        """A stage event from the named province profile."""
        return _receive(profile)
