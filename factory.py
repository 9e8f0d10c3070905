"""The app factory: binds every extension and blueprint in one place."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface
from flask_compress import Compress
from flask_smorest import Api

from api.errors import ErrorSchema, http_error_response
from api.json_body import BoundedJSONProvider
from api.middleware import refuse_malformed_body
from config import load_config
from config.settings import BaseConfig

# Every module that defines tables; Alembic and the tests load them through load_models().
MODEL_MODULES = (
    "core.audit",
    "core.outbox.models",
    "core.signing_keys",
    "domain.accounts.models",
    "domain.auth.models",
    "domain.calendar.models",
    "domain.catalog.models",
    "domain.identity.models",
    "domain.applications.models",
    "domain.forwarding.models",
    "domain.operators.models",
    "notifications.models",
    "domain.appointments.models",
    "domain.evaluations.models",
    "domain.complaints.models",
    "domain.ledger.models",
    "domain.shared_data.models",
    "domain.wallet.models",
    "domain.oauth.models",
)

# Blueprint modules, each exposing `blp` (and optionally more blueprints in `BLUEPRINTS`).
BLUEPRINT_MODULES = (
    "api.v1.system",
    "api.v1.me",
    "api.v1.closure",
    "api.v1.tokens",
    "api.v1.sms_login",
    "api.v1.catalog",
    "api.v1.identity",
    "api.v1.applications",
    "api.v1.platform",
    "api.v1.notifications",
    "api.v1.devices",
    "api.v1.appointments",
    "api.v1.evaluations",
    "api.v1.complaints",
    "api.v1.certificates",
    "api.v1.grants",
    "api.v1.app_facing",
    "miniprogram_bridge.login",
    "api.admin.auth",
    "api.admin.jobs",
    "api.admin.operators",
    "api.admin.audit",
    "api.admin.calendar",
    "api.admin.catalog",
    "api.admin.identity",
    "api.admin.applications",
    "api.admin.forwarding",
    "api.admin.host",
    "api.admin.notification_templates",
    "api.admin.appointments",
    "api.admin.evaluations",
    "api.admin.complaints",
    "api.admin.oauth_clients",
)


def load_models() -> Any:
    """Import every model module and return the shared metadata."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from core.db import Base

    return Base.metadata


class YiwangApi(Api):
    """flask-smorest Api whose HTTP errors use the project's error format, and whose OpenAPI
    document describes it: components.schemas.Error, used by every operation's `default`
    response and by the status responses (422 of a body that fails its schema, ...)."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: Any) -> Any:
        return http_error_response(error)


def _config_dict(config: BaseConfig | dict | None) -> dict:
    if config is None:
        config = load_config()
    if isinstance(config, dict):
        base = vars(load_config(config.get("ENV_NAME", "test")))
        base.update(config)
        return base
    return {k: v for k, v in vars(config).items() if k.isupper()} | {"ENV_NAME": config.ENV_NAME}


class YiwangFlask(Flask):
    """Flask, minus a per-hook cost: Flask asks `inspect.iscoroutinefunction` about every view
    and hook on every request (eleven times for a plain GET). yiwang has no async views, so a
    look at the code flags answers directly; anything unusual still goes to Flask. JSON is
    read with a bound on nesting (api/json_body.py)."""

    json_provider_class = BoundedJSONProvider

    def preprocess_request(self) -> Any:
        """Every before_request hook (the app's, then the blueprint's: authentication), then the
        refusal of a malformed body sent to a view that takes none: after the 401, as from a
        view that reads its body, for every endpoint however its blueprint was registered."""
        answer = super().preprocess_request()
        return answer if answer is not None else refuse_malformed_body()

    def ensure_sync(self, func: Any) -> Any:
        code = getattr(getattr(func, "__func__", func), "__code__", None)
        if code is not None and not code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR):
            return func
        return super().ensure_sync(func)


class NoSessions(SessionInterface):
    """The API is stateless (bearer tokens, no cookies): never build a signed-cookie session.
    Flask's default would set up an itsdangerous serializer on every request for nothing."""

    def open_session(self, app: Flask, request: Any) -> None:
        return None

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None


def create_app(config: BaseConfig | dict | None = None) -> Flask:
    """Build the yiwang app from a config object (default: YIWANG_ENV from the environment)."""
    from api import idempotency
    from api.deps import Services
    from api.errors import register_error_handlers
    from api.middleware import register_middleware
    from core.crypto import crypto
    from core.db import db
    from core.idempotency import IdempotencyStore
    from core.logging import configure_logging
    from core.outbox.service import OutboxSettings, outbox
    from core.ratelimit import RateLimiter
    from core.redis import redis_holder
    from core.signing_keys import KeyRing
    from core.tokens import TokenService
    from domain.auth.revocation import RevocationList
    from domain.auth.sessions import SessionPolicy
    from domain.oauth.tokens import OAuthPolicy

    cfg = _config_dict(config)
    app = YiwangFlask(__name__, instance_path=str(cfg["INSTANCE_DIR"]))
    app.session_interface = NoSessions()
    app.config.update(cfg)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    cfg["INSTANCE_DIR"].mkdir(parents=True, exist_ok=True)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_JSON"])

    load_models()
    db.init_app(app)
    redis_holder.init_app(app)
    crypto.init_app(app)
    redis = redis_holder.get()
    outbox.configure(OutboxSettings.from_config(app.config), redis)

    keyring = KeyRing(db.session.session_factory, crypto.encryptor, app.config["SIGNING_KEY_CACHE_SECONDS"])
    services = Services(
        keyring=keyring,
        tokens=TokenService(keyring, app.config["JWT_ISSUER"]),
        # Kept as long as the longest-lived access token a session or a grant's family has: an
        # app's tokens may outlive a citizen's (OAUTH_ACCESS_TOKEN_TTL), and a revocation
        # forgotten first would let a withdrawn app's token work again.
        revocations=RevocationList(
            redis, access_ttl=max(app.config["ACCESS_TOKEN_TTL"], app.config["OAUTH_ACCESS_TOKEN_TTL"])
        ),
        encryptor=crypto.encryptor,
        hasher=crypto.hasher,
        ratelimiter=RateLimiter(redis),
        idempotency=IdempotencyStore(redis, crypto.encryptor, ttl=app.config["IDEMPOTENCY_TTL"]),
        citizen_policy=SessionPolicy(
            audience=app.config["JWT_AUDIENCE"],
            access_ttl=app.config["ACCESS_TOKEN_TTL"],
            refresh_ttl=app.config["REFRESH_TOKEN_TTL"],
            max_age=app.config["SESSION_MAX_AGE"],
        ),
        oauth_policy=OAuthPolicy(
            audience=app.config["JWT_AUDIENCE"],
            access_ttl=app.config["OAUTH_ACCESS_TOKEN_TTL"],
            refresh_ttl=app.config["OAUTH_REFRESH_TOKEN_TTL"],
            code_ttl=app.config["OAUTH_CODE_TTL"],
        ),
    )
    from domain.accounts import profile_cache

    services.profiles = profile_cache.ProfileCache(redis)
    from domain.catalog.read_model import CatalogReadModel

    services.catalog = catalog = CatalogReadModel(
        lambda: db.reader(),
        refresh_seconds=app.config["CATALOG_REFRESH_SECONDS"],
        detail_cache=app.config["CATALOG_DETAIL_CACHE"],
    )
    profile_cache.configure(services.profiles)
    from domain.applications import forms

    forms.configure(catalog.revision)
    _attach_integrations(app, services, redis)
    from core.spool import Spool
    from domain.ledger.models import DataAccess

    services.ledger_lines = Spool(
        DataAccess.__table__,  # type: ignore[arg-type]
        db.autocommit,
        Path(app.config["LEDGER_SPOOL_DIR"]),
        interval=app.config["LEDGER_SPOOL_INTERVAL"],
        max_pending=app.config["LEDGER_SPOOL_MAX_PENDING"],
        dates=("at",),
    )
    if app.config["LEDGER_SPOOL_INTERVAL"] > 0:
        services.ledger_lines.start()  # also recovers lines a stopped process left on this host
    app.extensions["yiwang"] = services

    register_middleware(app)
    register_error_handlers(app)
    idempotency.init_app(app)
    api = YiwangApi(
        app,
        spec_kwargs={
            "info": {"description": "一网通办移动端后端 API。错误统一格式见 components.schemas.Error。"}
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for name in BLUEPRINT_MODULES:
        module = importlib.import_module(name)
        for blp in getattr(module, "BLUEPRINTS", None) or [module.blp]:
            api.register_blueprint(blp)
    from api.v1.system import wellknown

    api.register_blueprint(wellknown)
    _register_oauth(app, api.spec)
    from api.docs_assets import bp as docs_assets

    app.register_blueprint(docs_assets)
    _register_compression(app)
    from api.callbacks_fast_path import CallbackFastPath
    from api.conditional import CatalogFastPath

    app.wsgi_app = CallbackFastPath(app.wsgi_app, app)  # type: ignore[method-assign]
    app.wsgi_app = CatalogFastPath(app.wsgi_app, services.catalog, app.config["CATALOG_MAX_AGE"])  # type: ignore[method-assign]
    _register_cli(app)
    return app


def _register_oauth(app: Flask, spec: Any) -> None:
    """The OAuth 2.0 authorization server: protocol endpoints (forms, RFC 6749 errors; added to
    the OpenAPI document by hand), the pages, and the RFC 8414 metadata."""
    for pages in ("api.oauth.pages", "api.oauth.qr_pages"):
        importlib.import_module(pages)  # their routes join the blueprint before it is registered
    from api.oauth.server import build_server
    from api.oauth.views import bp, wellknown

    app.register_blueprint(bp)
    app.register_blueprint(wellknown)
    build_server(app)
    from api.oauth.openapi import document

    document(spec, app.url_map)
    app.config["NON_JSON_ENDPOINTS"] = set(app.config["NON_JSON_ENDPOINTS"]) | {
        f"oauth.{name}" for name in ("token", "revoke", "introspect", "decide", "sms_send", "sms_login",
                                     "logout", "qr_start")
    }  # fmt: skip


def _register_compression(app: Flask) -> None:
    """flask-compress for ordinary JSON; responses that carry their own encoding decision
    (pre-rendered catalog bodies, `response.precompressed = True`) are left alone."""
    app.config["COMPRESS_REGISTER"] = False
    compress = Compress(app)

    @app.after_request
    def _compress(response: Any) -> Any:
        if getattr(response, "precompressed", False):
            return response
        return compress.after_request(response)


def _attach_integrations(app: Flask, services: Any, redis: Any) -> None:
    from integrations.sms.client import SmsClient
    from integrations.wechat.client import WechatClient

    services.wechat = WechatClient.from_config(app.config, redis=redis)
    services.sms = SmsClient.from_config(app.config)
    services.identity = _identity_deps(app, services)
    services.govdata = _govdata_deps(app, services)
    from domain.forwarding.deps import ForwardingDeps

    services.forwarding = ForwardingDeps(app.config, services.encryptor, redis)
    services.applications = _application_deps(app, services)
    from notifications.deps import NotificationDeps

    services.notifications = NotificationDeps(
        app.config, services.encryptor, redis, wechat=services.wechat, sms=services.sms
    )


def _application_deps(app: Flask, services: Any) -> Any:
    """Applications: prefill sources, case numbers, blob storage for materials."""
    from domain.applications.case_numbers import CaseNumbers
    from domain.applications.deps import ApplicationDeps
    from domain.complaints import service as complaints
    from integrations.storage.select import storage_from_config

    return ApplicationDeps(
        encryptor=services.encryptor,
        case_numbers=CaseNumbers(app.config["CASE_NUMBER_FORMAT"], block=app.config["CASE_NUMBER_BLOCK"]),
        storage=storage_from_config(app.config),
        draft_ttl_days=app.config["APPLICATION_DRAFT_TTL_DAYS"],
        max_file_bytes=app.config["MATERIAL_MAX_BYTES"],
        max_files_per_material=max(1, app.config["MATERIAL_MAX_FILES"]),
        orphan_grace_seconds=app.config["MATERIAL_ORPHAN_GRACE_SECONDS"],
        identity_methods={c: list(m) for c, m in services.identity.policy.methods_by_channel.items()},
        certificate_check=_certificate_check(services.govdata),
        file_holders=[complaints.holds_file],  # a complaint's attachments outlive their draft
        forwarding_profile=lambda: services.forwarding.profile().name,
    )


def _certificate_check(govdata: Any) -> Any:
    """At submission: may each attached e-certificate still satisfy its material?"""
    from domain.wallet import service as wallet

    def check(session: Any, account_id: str, identifiers: list[str]) -> dict[str, bool]:
        return wallet.current_states(session, govdata, account_id=account_id, identifiers=identifiers)

    return check


def _govdata_deps(app: Flask, services: Any) -> Any:
    """The data-sharing exchange and the e-certificate library (simulators on the defaults)."""
    from domain.shared_data.deps import GovDataDeps
    from integrations.govdata.client import EcertClient, ExchangeClient

    return GovDataDeps(
        encryptor=services.encryptor,
        exchange=ExchangeClient.from_config(app.config),
        ecert=EcertClient.from_config(app.config),
        tokens=services.tokens,
        poll_seconds=app.config["SHARED_PENDING_POLL_SECONDS"],
        retention_days=app.config["SHARED_DATA_RETENTION_DAYS"],
        presentation_ttl=app.config["PRESENTATION_TTL_SECONDS"],
        draft_ttl_days=app.config["APPLICATION_DRAFT_TTL_DAYS"],
    )


def _identity_deps(app: Flask, services: Any) -> Any:
    """The real-name providers (each pointed at its configured host: simulator or real)."""
    from domain.identity.deps import IdentityDeps, IdentityPolicy
    from integrations.alipay.client import AlipayFaceProvider
    from integrations.idcheck.client import IdCheckClient
    from integrations.tencentcloud.faceid_client import TencentFaceIdProvider
    from integrations.wechat.face import WechatFaceProvider

    providers = {
        "wechat_face": WechatFaceProvider(services.wechat),
        "tencent_faceid": TencentFaceIdProvider.from_config(app.config),
        "alipay_face": AlipayFaceProvider.from_config(app.config),
        "id_check": IdCheckClient.from_config(app.config),
    }
    return IdentityDeps(
        encryptor=services.encryptor,
        hasher=services.hasher,
        ratelimiter=services.ratelimiter,
        revocations=services.revocations,
        policy=IdentityPolicy.from_config(app.config),
        providers=providers,
        tokens=services.tokens,
        session_policy=services.citizen_policy,
    )


def _register_cli(app: Flask) -> None:
    from cli import register_commands

    register_commands(app)
