"""APNs provider API client: HTTP/2, token-based authentication (ES256 JWT).

`POST /3/device/{token}` with `authorization: bearer <JWT>` (header alg ES256 + kid; claims iss =
team id, iat), apns-topic, apns-push-type, apns-priority, apns-expiration and apns-id. The
provider token is shared by the threads of a process and renewed every APNS_TOKEN_REFRESH seconds
(Apple accepts a token for an hour and refuses renewals more often than every 20 minutes).
Over https the client negotiates HTTP/2 with ALPN; over http (the simulator) it speaks HTTP/2 with
prior knowledge.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import jwt

log = logging.getLogger(__name__)

# Development signing key (.p8 contents); production refuses to start without its own.
DEV_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIP1f7FO0IpZJIi76
tD6nqE5ujVXpEUODVTXl9KaSNzqhRANCAATyqc+obEbQUX2iZBJJxZBimPbA9GMP
2PqHzYKx4NQkVRYqR6/PdNdh74xJ+FpZDz9nAks137ytMUUgcl2R49q6
-----END PRIVATE KEY-----
"""
DEV_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8qnPqGxG0FF9omQSScWQYpj2wPRj
D9j6h82CseDUJFUWKkevz3TXYe+MSfhaWQ8/ZwJLNd+8rTFFIHJdkePaug==
-----END PUBLIC KEY-----
"""
# Reasons a later attempt may not get; the rest will fail the same way again.
_RETRYABLE = {"TooManyRequests", "InternalServerError", "ServiceUnavailable", "Shutdown", "IdleTimeout"}
_TOKEN_REASONS = {"ExpiredProviderToken", "InvalidProviderToken", "MissingProviderToken"}


class ApnsError(Exception):
    """A refused or failed push; `reason` is APNs' reason string (or ours for network errors)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"APNs {status} {reason}")
        self.status = status
        self.reason = reason

    @property
    def unregistered(self) -> bool:
        return self.status == 410 or self.reason in ("Unregistered", "ExpiredToken")

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.status == 429 or self.reason in _RETRYABLE


class ApnsClient:
    """Sends one notification per call; thread-safe."""

    def __init__(
        self, *, base_url: str, team_id: str, key_id: str, private_key: str, topic: str,
        refresh_seconds: float = 2400.0, timeout: float = 5.0,
    ) -> None:  # fmt: skip
        if not 20 * 60 <= refresh_seconds <= 60 * 60:
            raise ValueError("APNS_TOKEN_REFRESH must be between 1200 and 3600 seconds")
        self.base_url = base_url.rstrip("/")
        self.team_id = team_id
        self.key_id = key_id
        self.topic = topic
        self._key = private_key
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None
        prior_knowledge = self.base_url.startswith("http://")
        self._http = httpx.Client(http2=True, http1=not prior_knowledge, timeout=timeout)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ApnsClient:
        return cls(
            base_url=cfg["APNS_BASE_URL"], team_id=cfg["APNS_TEAM_ID"], key_id=cfg["APNS_KEY_ID"],
            private_key=cfg.get("APNS_PRIVATE_KEY") or DEV_PRIVATE_KEY, topic=cfg["APNS_TOPIC"],
            refresh_seconds=float(cfg["APNS_TOKEN_REFRESH"]), timeout=float(cfg["PUSH_TIMEOUT"]),
        )  # fmt: skip

    def provider_token(self, *, renew: bool = False) -> str:
        """The current provider token, made anew when older than the refresh interval."""
        with self._lock:
            now = time.time()
            if renew or self._token is None or now - self._token[1] >= self._refresh:
                value = jwt.encode({"iss": self.team_id, "iat": int(now)}, self._key, algorithm="ES256",
                                   headers={"kid": self.key_id})  # fmt: skip
                self._token = (value, now)
            return self._token[0]

    def send(
        self, device_token: str, payload: Mapping[str, Any], *, push_type: str = "alert", priority: int = 10,
        expiration: int | None = None, apns_id: str | None = None, collapse_id: str | None = None,
    ) -> str:  # fmt: skip
        """Push `payload` to one device; returns the apns-id. Raises ApnsError."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "apns-topic": self.topic,
            "apns-push-type": push_type,
            "apns-priority": str(priority),
            "apns-expiration": str(expiration if expiration is not None else int(time.time()) + 86400),
            "apns-id": apns_id or str(uuid.uuid4()),
            "content-type": "application/json",
        }
        if collapse_id:
            headers["apns-collapse-id"] = collapse_id
        for attempt in (1, 2):
            headers["authorization"] = f"bearer {self.provider_token(renew=attempt == 2)}"
            try:
                resp = self._http.post(
                    f"{self.base_url}/3/device/{device_token}", content=body, headers=headers
                )
            except httpx.TimeoutException as exc:
                raise ApnsError(0, "Timeout") from exc
            except httpx.HTTPError as exc:
                raise ApnsError(0, "ConnectionFailed") from exc
            if resp.status_code == 200:
                return resp.headers.get("apns-id", headers["apns-id"])
            reason = _reason(resp)
            if resp.status_code == 403 and reason in _TOKEN_REASONS and attempt == 1:
                log.info("apns provider token refused; renewing", extra={"reason": reason})
                continue
            log.warning("apns refused a push", extra={"http_status": resp.status_code, "reason": reason})
            raise ApnsError(resp.status_code, reason)
        raise ApnsError(403, "InvalidProviderToken")

    def close(self) -> None:
        self._http.close()


def _reason(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("reason") or f"HTTP{resp.status_code}")
    except ValueError:
        return f"HTTP{resp.status_code}"
