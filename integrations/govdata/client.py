"""Clients of the data-sharing exchange and the e-certificate library (docs/shared-data.md).

Every failure is a GovDataError: `retryable` for timeouts, connection errors, 5xx, 429 and
answers whose signature does not verify; not retryable for the systems' signed refusals (4xx),
which carry their `code` (E4031 no authorisation, E4034 another person, E404 unknown, ...).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from integrations.govdata import protocol
from integrations.http_pool import SessionPool
from integrations.province import signing


class GovDataError(Exception):
    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code


class _SignedClient:
    def __init__(
        self,
        base_url: str,
        creds: signing.Credentials,
        *,
        timeout: float = 5.0,
        pool: SessionPool | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.creds = creds
        self.timeout = timeout
        self.pool = pool or SessionPool()
        self._nonces = signing.MemoryNonceStore()

    def call(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        url = urljoin(self.base_url, path.lstrip("/"))
        body = protocol.dumps(payload)
        headers = signing.sign_request(self.creds, "POST", urlsplit(url).path, body)
        headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            resp = self.pool.get().post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise GovDataError("timeout", retryable=True) from None
        except requests.RequestException as exc:
            raise GovDataError(f"connection: {type(exc).__name__}", retryable=True) from None
        status = resp.status_code
        if status == 429 or status >= 500:
            raise GovDataError(f"HTTP {status}", retryable=True, status=status)
        try:
            signing.verify_response(
                self.creds, status, resp.headers, resp.content, now=time.time(), nonce_seen=self._nonces.seen
            )
        except signing.SignatureError as exc:
            # An unsigned refusal (our own signature refused, say) stays a refusal; an unverifiable
            # 200 may be a middlebox or a key rollover: asking again may help.
            raise GovDataError(
                f"HTTP {status}, unverifiable answer ({exc.code})",
                retryable=not 400 <= status < 500,
                status=status,
            ) from None
        try:
            answer = resp.json()
        except ValueError:
            raise GovDataError("answer is not JSON", retryable=True, status=status) from None
        if not isinstance(answer, dict):
            raise GovDataError("answer is not an object", retryable=True, status=status)
        if status != 200 or str(answer.get("code")) != "0":
            raise GovDataError(
                str(answer.get("message") or f"HTTP {status}")[:300],
                retryable=False,
                status=status,
                code=str(answer.get("code")),
            )
        return answer


@dataclass(frozen=True)
class Answer:
    status: str  # found, no_record, pending, denied
    record: dict[str, Any] | None = None
    record_id: str | None = None
    ticket: str | None = None
    reason: str | None = None
    retrieved_at: int | None = None


def _answer(raw: dict[str, Any]) -> Answer:
    return Answer(
        status=str(raw.get("status")),
        record=raw.get("record"),
        record_id=raw.get("record_id"),
        ticket=raw.get("ticket"),
        reason=raw.get("reason"),
        retrieved_at=raw.get("retrieved_at"),
    )


class ExchangeClient(_SignedClient):
    """The data-sharing exchange: register the citizen's authorisation, then query within it."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExchangeClient:
        return cls(
            config["EXCHANGE_BASE_URL"],
            protocol.credentials(config),
            timeout=float(config["GOVDATA_TIMEOUT"]),
        )

    def authorize(
        self,
        *,
        subject: dict[str, str],
        datasets: list[str],
        purpose: dict[str, str],
        consent: dict[str, Any],
        expires_at: int,
    ) -> str:
        answer = self.call(
            "share/v1/authorizations",
            {
                "subject": subject,
                "datasets": datasets,
                "purpose": purpose,
                "consent": consent,
                "expires_at": expires_at,
            },
        )
        return str(answer["authorization_id"])

    def revoke(self, authorization_id: str) -> None:
        self.call("share/v1/authorizations/revoke", {"authorization_id": authorization_id})

    def query(self, *, authorization_id: str, dataset: str, id_number: str, application_id: str) -> Answer:
        return _answer(
            self.call(
                "share/v1/query",
                {
                    "authorization_id": authorization_id,
                    "dataset": dataset,
                    "subject": {"id_number": id_number},
                    "purpose": {"application_id": application_id},
                },
            )
        )

    def ticket(self, *, authorization_id: str, ticket: str) -> Answer:
        return _answer(
            self.call("share/v1/tickets", {"authorization_id": authorization_id, "ticket": ticket})
        )


@dataclass(frozen=True)
class CertificateFile:
    media_type: str
    content: bytes
    sha256: str


class EcertClient(_SignedClient):
    """The e-certificate library: a holder's certificates, one certificate's data, its file."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EcertClient:
        return cls(
            config["ECERT_BASE_URL"], protocol.credentials(config), timeout=float(config["GOVDATA_TIMEOUT"])
        )

    def list(self, *, id_number: str, name: str, purpose: str) -> list[dict[str, Any]]:
        answer = self.call(
            "ecert/v1/certificates/list",
            {"holder": {"id_number": id_number, "name": name}, "purpose": purpose},
        )
        return list(answer.get("certificates") or [])

    def detail(self, *, identifier: str, id_number: str, purpose: str) -> dict[str, Any]:
        answer = self.call(
            "ecert/v1/certificates/detail",
            {"identifier": identifier, "holder": {"id_number": id_number}, "purpose": purpose},
        )
        return dict(answer["certificate"])

    def file(self, *, identifier: str, id_number: str, fmt: str = "pdf") -> CertificateFile:
        answer = self.call(
            "ecert/v1/certificates/file",
            {"identifier": identifier, "holder": {"id_number": id_number}, "format": fmt},
        )
        content = base64.b64decode(answer["content"])
        if hashlib.sha256(content).hexdigest() != answer.get("sha256"):
            raise GovDataError("file digest does not match", retryable=True)
        return CertificateFile(str(answer["media_type"]), content, str(answer["sha256"]))
