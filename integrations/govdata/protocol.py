"""The wire protocol both government-data systems share with yiwang (docs/shared-data.md).

JSON over HTTP POST, signed both ways with the provincial platform's scheme
(integrations/province/signing.py: X-App-Id, X-Timestamp, X-Nonce, X-Signature-Method,
X-Signature; SM3-HMAC with GOVDATA_SECRET). Every answer is `{"code": "0", ...}` on success or
`{"code": "<E...>", "message": "..."}` with a 4xx status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, request

from integrations.province import signing

DEFAULT_APP_ID = "yiwang-sim"
DEFAULT_SECRET = "sim-govdata-secret-0000000000000"  # development only


def credentials(config: Mapping[str, Any]) -> signing.Credentials:
    return signing.Credentials(
        alg=signing.ALG_HMAC,
        app_id=str(config.get("GOVDATA_APP_ID") or DEFAULT_APP_ID),
        secret=str(config.get("GOVDATA_SECRET") or DEFAULT_SECRET),
    )


def dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class SignedEndpoint:
    """Server side for a simulator: verify each request, sign each answer; count auth failures."""

    def __init__(self, creds: signing.Credentials) -> None:
        self.creds = creds
        self.nonces = signing.MemoryNonceStore()
        self.auth_failures: dict[str, int] = {}

    def answer(self, status: int, body: Mapping[str, Any]) -> Response:
        raw = dumps(body)
        headers = signing.sign_response(self.creds, status, raw)
        return Response(raw, status=status, headers=headers, mimetype="application/json")

    def error(self, status: int, code: str, message: str) -> Response:
        return self.answer(status, {"code": code, "message": message})

    def handle(self, handler: Callable[[dict[str, Any]], Response]) -> Response:
        raw = request.get_data()
        try:
            signing.verify_request(
                self.creds,
                request.method,
                request.path,
                request.headers,
                raw,
                now=time.time(),
                nonce_seen=self.nonces.seen,
            )
        except signing.SignatureError as exc:
            self.auth_failures[exc.code] = self.auth_failures.get(exc.code, 0) + 1
            return self.error(401, "E401", f"签名校验失败：{exc.code}")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.error(400, "E4000", "请求体不是 JSON")
        if not isinstance(body, dict):
            return self.error(400, "E4000", "请求体必须是 JSON 对象")
        return handler(body)
