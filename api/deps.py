"""The services a request may use, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from core.crypto import Encryptor, LookupHasher
from core.idempotency import IdempotencyStore
from core.ratelimit import RateLimiter
from core.signing_keys import KeyRing
from core.tokens import TokenService
from domain.accounts.profile_cache import ProfileCache
from domain.auth.revocation import RevocationList
from domain.auth.sessions import SessionPolicy
from domain.catalog.read_model import CatalogReadModel
from domain.oauth.tokens import OAuthPolicy


@dataclass
class Services:
    keyring: KeyRing
    tokens: TokenService
    revocations: RevocationList
    encryptor: Encryptor
    hasher: LookupHasher
    ratelimiter: RateLimiter
    idempotency: IdempotencyStore
    citizen_policy: SessionPolicy
    oauth_policy: OAuthPolicy
    profiles: ProfileCache | None = None
    wechat: Any = None  # integrations.wechat.client.WechatClient
    sms: Any = None  # integrations.sms.client.SmsClient
    catalog: CatalogReadModel | None = None
    identity: Any = None  # domain.identity.deps.IdentityDeps
    applications: Any = None  # domain.applications.deps.ApplicationDeps
    forwarding: Any = None  # domain.forwarding.deps.ForwardingDeps
    notifications: Any = None  # notifications.deps.NotificationDeps
    govdata: Any = None  # domain.shared_data.deps.GovDataDeps
    ledger_lines: Any = None  # core.spool.Spool of the data-use ledger (third-party access)


def services() -> Services:
    """The Services of the current app."""
    return current_app.extensions["yiwang"]
