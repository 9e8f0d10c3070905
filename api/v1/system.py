"""Liveness, readiness and the public signing keys."""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from sqlalchemy import text

from api.auth import public
from api.blueprint import Blueprint
from api.deps import services
from api.errors import ErrorSchema
from api.openapi_answers import array_of, json_answer, object_of
from api.schemas import HealthSchema, ReadySchema
from core.db import db
from core.errors import ServiceUnavailable
from core.redis import get_redis

blp = Blueprint("system", __name__, url_prefix="/v1", description="服务状态 / Service status")
wellknown = Blueprint("wellknown", __name__, url_prefix="/.well-known", description="公钥 / Public keys")


class NotReady(ServiceUnavailable):
    code = "service.not_ready"
    message_zh = "服务尚未就绪：{failed}"
    message_en = "Service not ready: {failed}"


@blp.route("/health")
class Health(MethodView):
    @public
    @blp.response(200, HealthSchema)
    def get(self) -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @public
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, schema=ErrorSchema, description="数据库或 Redis 不可用")
    def get(self) -> dict:
        """Readiness: the database and Redis are reachable."""
        checks = {}
        try:
            with db.engine.connect() as conn:  # type: ignore[union-attr]
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unavailable"
        try:
            get_redis().ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "unavailable"
        failed = [k for k, v in checks.items() if v != "ok"]
        if failed:
            raise NotReady(details={"checks": checks}, failed=", ".join(failed))
        return {"status": "ready", "checks": checks}


@wellknown.route("/jwks.json")
class Jwks(MethodView):
    @public
    @wellknown.doc(responses={200: json_answer("JSON Web Key Set (RFC 7517)", object_of(keys=array_of()))})
    def get(self):  # noqa: ANN201 - plain JSON document by RFC 7517
        """JSON Web Key Set of every key whose tokens may still be valid."""
        resp = jsonify({"keys": services().keyring.public_jwks()})
        resp.headers["Cache-Control"] = "public, max-age=300"
        return resp
