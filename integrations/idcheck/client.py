"""Client of the public-security ID two-element check (公安身份二要素核验): name + ID number.

Protocol (docs/integrations/idcheck.md, integrations/idcheck/simulator.py): one signed HTTP JSON
call, POST {base}/v1/verify/two-factor; the name and ID number travel SM4-GCM encrypted; the
answer is signed and refused unless its signature verifies. A final answer (match, mismatch, no
record, malformed ID) is an IdCheckResult; anything else raises ProviderUnavailable (retry later)
or ProviderFailed (an operator must act).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import requests

from core.masking import redact_text
from integrations.http_pool import SessionPool
from integrations.idcheck import signing
from integrations.realname.base import (
    REASON_ID_INVALID,
    REASON_IDENTITY_MISMATCH,
    REASON_NO_RECORD,
    REASON_REJECTED,
    IdCheckResult,
    Person,
    ProviderFailed,
    ProviderUnavailable,
)

log = logging.getLogger(__name__)

PROVIDER = "idcheck"
DEFAULT_PURPOSE = "政务服务实名认证"
# Result codes → our reasons; "0" is the only match.
RESULT_REASONS = {"1": REASON_IDENTITY_MISMATCH, "2": REASON_NO_RECORD, "3": REASON_ID_INVALID}
# Envelope codes a later attempt can succeed on: quota, internal error, upstream database down,
# and a replayed nonce (every attempt signs with a fresh one, so a replay is a duplicate in transit).
RETRYABLE_CODES = {1003, 1006, 5000, 5003}
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class IdCheckClient:
    """IdCheckProvider over the two-element check service's signed HTTP JSON API."""

    method = "id_check"

    def __init__(
        self, *, base_url: str, app_id: str, app_secret: str, timeout: float, purpose: str = DEFAULT_PURPOSE
    ) -> None:
        self.base_url = (base_url or "").rstrip("/")
        self.app_id = app_id or ""
        self._secret = app_secret or ""
        self.timeout = float(timeout)
        self.purpose = purpose
        self._http = SessionPool()  # keep-alive connections per thread and process

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> IdCheckClient:
        """Build from app config: IDCHECK_BASE_URL, IDCHECK_APP_ID, IDCHECK_APP_SECRET, PROVIDER_TIMEOUT."""
        return cls(
            base_url=cfg["IDCHECK_BASE_URL"],
            app_id=cfg["IDCHECK_APP_ID"],
            app_secret=cfg["IDCHECK_APP_SECRET"],
            timeout=cfg["PROVIDER_TIMEOUT"],
        )

    def __repr__(self) -> str:  # never show the secret
        return f"IdCheckClient(base_url={self.base_url!r}, app_id={self.app_id!r})"

    def check(self, person: Person, *, out_ref: str) -> IdCheckResult:
        """Ask the service whether name and ID number belong together; raise ProviderError on failure."""
        if not (self.base_url and self.app_id and self._secret):
            raise ProviderFailed(
                PROVIDER, "config_error", "IDCHECK_BASE_URL, IDCHECK_APP_ID or secret missing"
            )
        if not _REQUEST_ID.fullmatch(out_ref or ""):
            raise ProviderFailed(PROVIDER, "invalid_request_id", "out_ref must be 1-64 of [A-Za-z0-9_-]")
        payload = signing.encrypt_payload(
            self._secret, out_ref, person.name.strip(), person.id_number.strip().upper()
        )
        fields = {"request_id": out_ref, "purpose": self.purpose, "payload": payload}
        body = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        # Signature timestamps are transport facts: wall time, as any SDK, not the app's clock.
        headers = signing.request_headers(self.app_id, self._secret, body, timestamp=int(time.time()))
        headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            resp = self._http.get().post(
                self.base_url + signing.VERIFY_PATH, data=body, headers=headers,
                timeout=self.timeout, allow_redirects=False,
            )  # fmt: skip
        except requests.Timeout:
            raise self._unavailable("timeout", f"no answer within {self.timeout:g} s", out_ref) from None
        except requests.RequestException as exc:
            raise self._unavailable("connection_failed", type(exc).__name__, out_ref) from None
        return self._result(resp, out_ref, time.monotonic() - started)

    def _result(self, resp: requests.Response, out_ref: str, elapsed: float) -> IdCheckResult:
        """Verify and interpret one answer."""
        status = resp.status_code
        if status >= 500 or status == 429:
            raise self._unavailable(f"http_{status}", "service unavailable", out_ref)
        if status != 200:
            raise self._failed(f"http_{status}", "unexpected HTTP status", out_ref)
        envelope = _json(resp.content)
        if not signing.response_signature_ok(self._secret, status, resp.headers, resp.content):
            # An unknown app cannot be signed for; any other unsigned or badly signed answer is
            # untrusted, whatever it says.
            if envelope and envelope.get("code") == 1004 and signing.H_SIGNATURE not in resp.headers:
                raise self._failed("1004", "unknown app id", out_ref)
            claimed = envelope.get("code") if envelope else None  # unverified: a hint for operators only
            message = "response signature missing or invalid" + (
                f" (unverified code {claimed})" if isinstance(claimed, int) else ""
            )
            raise self._failed("bad_response_signature", message, out_ref)
        if envelope is None or not isinstance(envelope.get("code"), int):
            raise self._failed("malformed_response", "response is not the documented JSON", out_ref)
        code = envelope["code"]
        if code != 0:
            message = redact_text(str(envelope.get("message") or ""))[:200]
            if code in RETRYABLE_CODES:
                raise self._unavailable(str(code), message, out_ref)
            raise self._failed(str(code), message, out_ref)
        if envelope.get("request_id") != out_ref:
            raise self._failed("request_id_mismatch", "answer is for another request", out_ref)
        result = envelope.get("result")
        result_code = result.get("code") if isinstance(result, dict) else None
        if not isinstance(result_code, str):
            raise self._failed("malformed_response", "result code missing", out_ref)
        serial_no = envelope.get("serial_no") if isinstance(envelope.get("serial_no"), str) else None
        log.info(
            "idcheck answered",
            extra={"request_id": out_ref, "result_code": result_code, "serial_no": serial_no,
                   "elapsed_ms": round(elapsed * 1000)},
        )  # fmt: skip
        if result_code == "0":
            return IdCheckResult(matched=True, provider_code="0", provider_request_id=serial_no)
        reason = RESULT_REASONS.get(result_code)
        if reason is None:  # a code this client does not know is still the service's final refusal
            log.warning(
                "idcheck unknown result code", extra={"request_id": out_ref, "result_code": result_code}
            )
            reason = REASON_REJECTED
        return IdCheckResult(
            matched=False, reason=reason, provider_code=result_code, provider_request_id=serial_no
        )

    def _unavailable(self, code: str, message: str, out_ref: str) -> ProviderUnavailable:
        log.warning("idcheck unavailable", extra={"request_id": out_ref, "provider_code": code})
        return ProviderUnavailable(PROVIDER, code, message)

    def _failed(self, code: str, message: str, out_ref: str) -> ProviderFailed:
        log.error("idcheck failed", extra={"request_id": out_ref, "provider_code": code})
        return ProviderFailed(PROVIDER, code, message)


def _json(content: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None."""
    try:
        obj = json.loads(content)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
