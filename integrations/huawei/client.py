"""Huawei Push Kit client: an OAuth client_credentials token, then `POST /v1/{appId}/messages:send`.

The token (valid `expires_in` seconds, usually 3600) is shared by the threads of a process and
renewed a minute early, or at once when Push Kit answers 80200003 (token expired) or HTTP 401.
Result codes: "80000000" success; 80100000 partly successful (its msg lists illegal tokens);
80300007 every token invalid; 80100003 bad message; 80300008 body too large; 80200001 auth
error; 81000001 internal error; HTTP 503 / 429 flow control.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import urllib3

log = logging.getLogger(__name__)

SUCCESS = "80000000"
_RETRYABLE = {"81000001", "80200003"}
_GONE = {"80300007", "80100000"}


class HuaweiPushError(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"Huawei Push {status} {code} {message}"[:300])
        self.status, self.code, self.message = status, code, message[:200]

    @property
    def unregistered(self) -> bool:
        return self.code in _GONE

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429) or self.status >= 500 or self.code in _RETRYABLE


class HuaweiPushClient:
    def __init__(
        self, *, token_url: str, push_base_url: str, app_id: str, client_secret: str, timeout: float
    ) -> None:
        self.token_url = token_url
        self.push_base_url = push_base_url.rstrip("/")
        self.app_id = app_id
        self._secret = client_secret
        # urllib3 directly: a pooled, thread-safe client with little work per request.
        self._http = urllib3.PoolManager(maxsize=16, timeout=urllib3.Timeout(total=timeout), retries=False)
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> HuaweiPushClient:
        return cls(
            token_url=cfg["HUAWEI_TOKEN_URL"],
            push_base_url=cfg["HUAWEI_PUSH_BASE_URL"],
            app_id=cfg["HUAWEI_APP_ID"],
            client_secret=cfg["HUAWEI_APP_SECRET"],
            timeout=float(cfg["PUSH_TIMEOUT"]),
        )

    def access_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if not renew and self._token is not None and time.time() < self._token[1]:
                return self._token[0]
            try:
                form = {
                    "grant_type": "client_credentials",
                    "client_id": self.app_id,
                    "client_secret": self._secret,
                }
                resp = self._http.request_encode_body(
                    "POST", self.token_url, fields=form, encode_multipart=False
                )
            except urllib3.exceptions.HTTPError as exc:
                raise HuaweiPushError(0, "token", "token endpoint unreachable") from exc
            data = _json(resp)
            if resp.status != 200 or not data.get("access_token"):
                log.error(
                    "huawei push token refused: check HUAWEI_APP_ID/HUAWEI_APP_SECRET",
                    extra={"http_status": resp.status},
                )
                raise HuaweiPushError(resp.status, str(data.get("error") or "token"), "token refused")
            ttl = max(60, int(data.get("expires_in") or 3600))
            self._token = (str(data["access_token"]), time.time() + ttl - 60)
            return self._token[0]

    def send(self, token: str, *, title: str, body: str, data: Mapping[str, Any]) -> str:
        """Push one notification to one device token; returns Push Kit's requestId."""
        message = {
            "validate_only": False,
            "message": {
                "data": json.dumps(dict(data), ensure_ascii=False),
                "notification": {"title": title, "body": body},
                "android": {"notification": {"click_action": {"type": 3}, "importance": "NORMAL"}},
                "token": [token],
            },
        }
        url = f"{self.push_base_url}/v1/{self.app_id}/messages:send"
        raw = json.dumps(message, ensure_ascii=False).encode()
        for attempt in (1, 2):
            headers = {
                "Authorization": f"Bearer {self.access_token(renew=attempt == 2)}",
                "Content-Type": "application/json",
            }
            try:
                resp = self._http.request("POST", url, body=raw, headers=headers)
            except urllib3.exceptions.TimeoutError as exc:
                raise HuaweiPushError(0, "timeout") from exc
            except urllib3.exceptions.HTTPError as exc:
                raise HuaweiPushError(0, "connection") from exc
            result = _json(resp)
            code = str(result.get("code") or "")
            if resp.status == 200 and code == SUCCESS:
                return str(result.get("requestId") or "")
            if attempt == 1 and (resp.status == 401 or code == "80200003"):
                continue
            log.warning("huawei push refused", extra={"http_status": resp.status, "push_code": code})
            raise HuaweiPushError(resp.status, code or f"HTTP{resp.status}", str(result.get("msg") or ""))
        raise HuaweiPushError(401, "80200003", "token refused twice")


def _json(resp: urllib3.BaseHTTPResponse) -> dict:
    try:
        data = json.loads(resp.data)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
