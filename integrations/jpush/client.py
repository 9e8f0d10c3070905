"""JPush REST API v3 client: `POST /v3/push` with HTTP Basic base64(appKey:masterSecret).

One registration id per call (so each message has its own outcome). Success is HTTP 200 with
{sendno, msg_id}; failures carry {"error": {"code", "message"}}. Codes used here: 1011 no
device matches the audience (the registration id is gone), 1003/1001 bad parameters, 1004/1008
authentication, 2002 and HTTP 429 API rate limit, 1030/HTTP 5xx JPush internal errors.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

import urllib3

log = logging.getLogger(__name__)

_RETRYABLE_CODES = {1030, 2002, 2008}
_GONE_CODES = {1011}


class JPushError(Exception):
    def __init__(self, status: int, code: int, message: str = "") -> None:
        super().__init__(f"JPush {status} {code} {message}"[:300])
        self.status, self.code, self.message = status, code, message[:200]

    @property
    def unregistered(self) -> bool:
        return self.code in _GONE_CODES

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429) or self.status >= 500 or self.code in _RETRYABLE_CODES


class JPushClient:
    def __init__(
        self, *, base_url: str, app_key: str, master_secret: str, production: bool, timeout: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.production = production
        auth = base64.b64encode(f"{app_key}:{master_secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
        # urllib3 directly: a pooled, thread-safe client with little work per request.
        self._http = urllib3.PoolManager(maxsize=16, timeout=urllib3.Timeout(total=timeout), retries=False)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> JPushClient:
        return cls(
            base_url=cfg["JPUSH_BASE_URL"],
            app_key=cfg["JPUSH_APP_KEY"],
            master_secret=cfg["JPUSH_MASTER_SECRET"],
            production=cfg.get("ENV_NAME") == "production",
            timeout=float(cfg["PUSH_TIMEOUT"]),
        )

    def push(
        self, registration_id: str, *, title: str, body: str, extras: Mapping[str, Any], sendno: int
    ) -> str:
        """Push one notification to one registration id; returns JPush's msg_id."""
        payload = {
            "platform": ["android", "ios"],
            "audience": {"registration_id": [registration_id]},
            "notification": {
                "android": {"alert": body, "title": title, "extras": dict(extras)},
                "ios": {"alert": {"title": title, "body": body}, "sound": "default", "extras": dict(extras)},
            },
            "options": {"sendno": sendno, "time_to_live": 86400, "apns_production": self.production},
        }
        raw = json.dumps(payload, ensure_ascii=False).encode()
        try:
            resp = self._http.request("POST", f"{self.base_url}/v3/push", body=raw, headers=self._headers)
        except urllib3.exceptions.TimeoutError as exc:
            raise JPushError(0, 0, "timeout") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise JPushError(0, 0, "connection failed") from exc
        try:
            data = json.loads(resp.data)
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if resp.status == 200 and data.get("msg_id"):
            return str(data["msg_id"])
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        err = JPushError(resp.status, int(error.get("code") or 0), str(error.get("message") or ""))
        log.warning("jpush refused a push", extra={"http_status": err.status, "jpush_code": err.code})
        raise err
