"""What the verification services depend on, configured once by the app factory."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.crypto import Encryptor, LookupHasher
from core.ratelimit import RateLimiter
from core.tokens import TokenService
from domain.auth.revocation import RevocationList
from domain.auth.sessions import SessionPolicy
from domain.identity.models import IdentityVerification

NAME_PURPOSE = "identity-name"
ID_PURPOSE = "identity-id-number"
REF_PURPOSE = "identity-provider-ref"


def id_check_claim_seconds(provider_timeout: float) -> int:
    """How long an ID check's in-flight claim lasts at most: the ID-check client's worst case
    (integrations/idcheck/client.py gives requests PROVIDER_TIMEOUT, which bounds connecting and
    reading each) plus 5 s to record the result. A claim whose request died ends by then."""
    return math.ceil(2 * float(provider_timeout)) + 5


@dataclass(frozen=True)
class IdentityPolicy:
    """Which methods each channel offers, the consent version in force, and the limits."""

    methods_by_channel: Mapping[str, tuple[str, ...]]
    consent_version: str
    face_per_account_per_day: int
    face_per_ip_per_hour: int
    idcheck_per_account_per_day: int
    # ID checks one address starts per hour: many throw-away accounts (each within its own daily
    # allowance) probing names for one ID number from one place.
    idcheck_per_ip_per_hour: int
    # Starts naming one ID number (its blind index) per day across all accounts; the account
    # that already holds that identity is not counted (see service._begin).
    starts_per_id_number_per_day: int
    idcheck_claim_seconds: int  # an ID check's in-flight claim (id_check_claim_seconds)
    wechat_appid: str
    return_url: str

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> IdentityPolicy:
        """IDENTITY_METHODS_*, FACE_CONSENT_VERSION, the limits and PROVIDER_TIMEOUT from the app config."""

        def methods(spec: str) -> tuple[str, ...]:
            return tuple(m.strip() for m in spec.split(",") if m.strip())

        return cls(
            methods_by_channel={
                "miniprogram": methods(cfg["IDENTITY_METHODS_MINIPROGRAM"]),
                "app": methods(cfg["IDENTITY_METHODS_APP"]),
            },
            consent_version=cfg["FACE_CONSENT_VERSION"],
            face_per_account_per_day=int(cfg["FACE_PER_ACCOUNT_PER_DAY"]),
            face_per_ip_per_hour=int(cfg["FACE_PER_IP_PER_HOUR"]),
            idcheck_per_account_per_day=int(cfg["IDCHECK_PER_ACCOUNT_PER_DAY"]),
            idcheck_per_ip_per_hour=int(cfg["IDCHECK_PER_IP_PER_HOUR"]),
            starts_per_id_number_per_day=int(cfg["VERIFY_PER_ID_NUMBER_PER_DAY"]),
            idcheck_claim_seconds=id_check_claim_seconds(cfg["PROVIDER_TIMEOUT"]),
            wechat_appid=cfg["WECHAT_APPID"],
            return_url=cfg["ALIPAY_RETURN_URL"],
        )

    def methods(self, channel: str) -> tuple[str, ...]:
        """Methods a citizen on `channel` may start."""
        return self.methods_by_channel.get(channel, ())


@dataclass
class IdentityDeps:
    """What the verification services need, built once by the app factory."""

    encryptor: Encryptor
    hasher: LookupHasher
    ratelimiter: RateLimiter
    revocations: RevocationList
    policy: IdentityPolicy
    providers: Mapping[str, Any]  # method -> FaceProvider | IdCheckProvider
    tokens: TokenService  # a new access token carries a raised level at once
    session_policy: SessionPolicy


@dataclass(frozen=True)
class Outcome:
    """A verification as the API shows it, plus the account the caller now belongs to."""

    verification: IdentityVerification
    account_id: str
    merged_from: str | None = None
    client_payload: dict[str, Any] | None = None
    level_changed: bool = False
    identity_level: str | None = None  # the account's level now, when the service knows it
    # A new access token of the caller's session carrying the new level (not after a merge:
    # the caller then needs a session of the account it was merged into).
    access_token: str | None = None
