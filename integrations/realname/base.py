"""The interface every real-name provider implements, and the failures it may raise.

Two kinds of provider:
- a face provider (WeChat face verification 2.0, Tencent Cloud FaceID, Alipay identity
  verification) is started by the server, finished by the citizen in the provider's SDK or
  page, and then asked for its result by the server (`start` then `result`);
- an ID check provider (the public-security two-element check) answers at once (`check`).

Domain code sees only these types. Provider-specific codes travel in `provider_code` for the
audit trail and support; `reason` is one of the REASONS below, which the API turns into a
message a citizen understands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import PermanentError, RetryableError

# Normalised failure reasons of a finished verification.
REASON_IDENTITY_MISMATCH = "identity_mismatch"  # name/ID number do not match, or not this person's face
REASON_NO_RECORD = "no_record"  # the ID number is unknown to the authoritative source
REASON_LIVENESS_FAILED = "liveness_failed"  # no live face (photo, video, mask) or face not detected
REASON_EXPIRED = "expired"  # the provider's token or verification expired
REASON_CANCELLED = "cancelled"  # the citizen left the provider's page or SDK
REASON_ID_INVALID = "id_invalid"  # the provider considers the ID number malformed
REASON_REJECTED = "rejected"  # any other final refusal by the provider
REASONS = (
    REASON_IDENTITY_MISMATCH,
    REASON_NO_RECORD,
    REASON_LIVENESS_FAILED,
    REASON_EXPIRED,
    REASON_CANCELLED,
    REASON_ID_INVALID,
    REASON_REJECTED,
)


@dataclass(frozen=True)
class Person:
    """Name and ID number to verify. Never logged: repr hides both."""

    name: str
    id_number: str

    def __repr__(self) -> str:
        return "Person(<hidden>)"


@dataclass(frozen=True)
class FaceStart:
    """What `start` returns.

    provider_ref: the provider's handle for this verification (verify_id, BizToken, certify_id);
    client_payload: exactly what the phone's SDK or browser needs, e.g. {"verify_id": ...},
        {"biz_token": ..., "url": ...} or {"certify_url": ...};
    expires_in: seconds until the provider forgets the verification.
    """

    provider_ref: str
    client_payload: dict[str, Any]
    expires_in: int
    provider_request_id: str | None = None


@dataclass(frozen=True)
class FaceResult:
    """What `result` returns.

    pending: the citizen has not finished in the provider's SDK yet (ask again later);
    passed: True only when the provider confirms a live face matching the person;
    reason: one of REASONS when not passed and not pending;
    score: the similarity score when the provider gives one (0-100);
    provider_code: the provider's own result code, for audit and support.
    No image, video or other biometric data ever appears here.
    """

    passed: bool
    pending: bool = False
    reason: str | None = None
    score: float | None = None
    provider_code: str | None = None
    provider_request_id: str | None = None


@dataclass(frozen=True)
class IdCheckResult:
    """The public-security two-element check: matched, or the reason it did not."""

    matched: bool
    reason: str | None = None
    provider_code: str | None = None
    provider_request_id: str | None = None


@dataclass(frozen=True)
class StartContext:
    """Per-call facts a provider may need besides the person."""

    out_ref: str  # our unique reference for this verification (≤32 alphanumerics)
    openid: str | None = None  # WeChat: the mini-program user's openid
    return_url: str | None = None  # browser flows: where the provider sends the citizen back
    extra: dict[str, Any] = field(default_factory=dict)


class FaceProvider(Protocol):
    """A face verification provider."""

    method: str  # "wechat_face", "tencent_faceid", "alipay_face"

    def start(self, person: Person, ctx: StartContext) -> FaceStart:
        """Register a verification with the provider; raise ProviderError on failure."""
        ...

    def result(self, person: Person, ctx: StartContext, provider_ref: str) -> FaceResult:
        """Ask the provider for the outcome; raise ProviderError on failure."""
        ...


class IdCheckProvider(Protocol):
    """An authoritative name + ID number check."""

    method: str  # "id_check"

    def check(self, person: Person, *, out_ref: str) -> IdCheckResult:
        """Ask the authoritative source; raise ProviderError on failure."""
        ...


class ProviderError(Exception):
    """A provider call that produced no usable answer.

    `provider` names the provider, `code` is its error code (or ours: "timeout",
    "connection_failed", "http_503", "bad_response_signature", ...), `message` is safe to log
    (never a name or ID number).
    """

    retryable = False

    def __init__(self, provider: str, code: str, message: str = "") -> None:
        super().__init__(f"{provider}: {code} {message}".strip())
        self.provider = provider
        self.code = code
        self.message = message


class IdentityRefused(ProviderError, PermanentError):
    """The provider refused the person outright when asked to start (e.g. the name and ID number
    do not match its records): a final outcome for the citizen, not a fault. `reason` is one of
    REASONS."""

    def __init__(self, provider: str, code: str, reason: str, message: str = "") -> None:
        super().__init__(provider, code, message)
        self.reason = reason


class ProviderUnavailable(ProviderError, RetryableError):
    """Timeout, connection failure, 5xx, busy or rate-limited: the citizen may retry soon (503)."""

    retryable = True


class ProviderFailed(ProviderError, PermanentError):
    """The provider refused our call or answered something we cannot trust (bad signature,
    bad credentials, malformed answer): retrying will not help until an operator acts (502)."""
