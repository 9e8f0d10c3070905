"""The province platform client: signed, field-encrypted intake and status calls (docs/province.md).

Every failure is a ProvinceError that says whether a retry can help: timeouts, connection
errors, 5xx, 429 and unverifiable answers (4xx included: anything in between may send them) are
retryable (the province dedupes by 申办流水号, so a retry after a lost answer is safe); signed 4xx
validation answers are permanent and carry the province's reason for the operator.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from integrations.http_pool import SessionPool
from integrations.province import gm, signing
from integrations.province.profile import Profile

log = logging.getLogger(__name__)


class ProvinceError(Exception):
    """A call that did not succeed; `retryable` says whether trying again may help."""

    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, code: str | None = None,
        retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def no_such_case(self) -> bool:
        """The province's signed answer that it has no case under the 申办流水号 sent (not any 404)."""
        return not self.retryable and self.status == 404 and self.code == "E404"


@dataclass(frozen=True)
class Receipt:
    sblsh: str
    version: int
    receipt_no: str
    received_at: str | None
    duplicate: bool


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


class ProvinceClient:
    """Calls one province profile; thread-safe (one pooled HTTP session per thread)."""

    def __init__(self, profile: Profile, pool: SessionPool | None = None) -> None:
        self.profile = profile
        self.pool = pool or SessionPool()
        self._nonces = signing.MemoryNonceStore()

    def encrypt_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of `body` with the profile's sensitive fields SM4-encrypted."""
        out = copy.deepcopy(body)
        for path in self.profile.encrypted_fields:
            value = _get(out, path)
            if isinstance(value, str) and value:
                _set(out, path, gm.sm4_encrypt_field(self.profile.sm4_key, value))
        return out

    def intake(self, body: dict[str, Any]) -> Receipt:
        """Send one 申办 / resubmission / withdrawal; `body` holds plain values (encrypted here)."""
        answer = self._call(self.profile.intake_path, self.encrypt_fields(body))
        try:
            receipt = Receipt(
                sblsh=str(answer["sblsh"]), version=int(answer["version"]),
                receipt_no=str(answer["receipt_no"])[:64], received_at=answer.get("received_at"),
                duplicate=bool(answer.get("duplicate")),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ProvinceError(f"receipt without its fields: {exc}", retryable=True) from None
        # A receipt is for the case and version sent, or it says nothing about them: recorded,
        # it would mark this case received on the strength of another's (a mix-up anywhere on
        # the province's side). Sent again (the province dedupes); operators are told at once.
        sent = (str(body.get("sblsh")), str(body.get("version")))
        if "sblsh" in body and (receipt.sblsh, str(receipt.version)) != sent:
            log.error(
                "province receipt names another case or version; retrying",
                extra={"sent": "/".join(sent), "receipt": f"{receipt.sblsh}/{receipt.version}",
                       "alert": "forwarding.receipt_mismatch"},
            )  # fmt: skip
            raise ProvinceError(
                f"receipt for {receipt.sblsh} version {receipt.version}, not the one sent", retryable=True
            )
        return receipt

    def evaluation(self, body: dict[str, Any]) -> bool:
        """Push one 好差评 evaluation; True when the province already had it."""
        return bool(self._call(self.profile.evaluation_path, body).get("duplicate"))

    def status(self, sblsh: str) -> dict[str, Any] | None:
        """The province's record of a case (received versions, stage events), None if unknown."""
        try:
            return self._call(self.profile.status_path, {"sblsh": sblsh})
        except ProvinceError as exc:
            if exc.no_such_case:
                return None
            raise

    def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        url = self.profile.url(path)
        signed_path = urlsplit(url).path
        headers = signing.sign_request(self.profile.credentials, "POST", signed_path, body)
        headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            resp = self.pool.get().post(url, data=body, headers=headers, timeout=self.profile.timeout)
        except requests.Timeout as exc:
            raise ProvinceError(f"timeout: {type(exc).__name__}", retryable=True) from None
        except requests.RequestException as exc:
            raise ProvinceError(f"connection: {type(exc).__name__}", retryable=True) from None
        status = resp.status_code
        if status == 429 or status >= 500:
            retry_after = _retry_after(resp.headers.get("Retry-After"))
            raise ProvinceError(f"HTTP {status}", retryable=True, status=status, retry_after=retry_after)
        try:
            signing.verify_response(
                self.profile.credentials, status, resp.headers, resp.content, now=time.time(),
                nonce_seen=self._nonces.seen,
            )  # fmt: skip
        except signing.SignatureError as exc:
            # Not the province's word: anything in between (a gateway, a firewall, a proxy's 4xx)
            # can answer unsigned, and a refusal nobody can attribute must not end a citizen's
            # submission. Retried with backoff until the row's maximum age (then dead, for an
            # operator); a 4xx is logged for operators at once (our signature refused, say).
            if 400 <= status < 500:
                log.error(
                    "province answered an unverifiable refusal; retrying",
                    extra={"status": status, "reason": exc.code, "alert": "forwarding.unverifiable_refusal"},
                )
            raise ProvinceError(
                f"HTTP {status}, unverifiable answer ({exc.code})", retryable=True, status=status
            ) from None
        try:
            answer = resp.json()
        except ValueError:
            raise ProvinceError("answer is not JSON", retryable=True, status=status) from None
        if not isinstance(answer, dict):
            raise ProvinceError("answer is not an object", retryable=True, status=status)
        if status != 200 or str(answer.get("code")) != "0":
            message = str(answer.get("message") or f"HTTP {status}")[:500]
            raise ProvinceError(message, retryable=False, status=status, code=str(answer.get("code")))
        return answer


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from a Retry-After of delay-seconds or an HTTP date (RFC 9110 10.2.3: a
    maintenance gateway's "come back at 10:10")."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
