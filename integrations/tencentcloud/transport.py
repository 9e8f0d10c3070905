"""A lighter HTTP transport for the Tencent Cloud SDK client.

The SDK signs (TC3-HMAC-SHA256), serialises and parses; it sends through a `requests.Session`,
whose per-call work (preparing, merging settings, cookie jars, hooks) cost about a fifth of a
verification's CPU in yiwang (docs/benchmarks.md). `Urllib3Connection` takes the place of the
SDK's `ProxyConnection` (`client.request.conn`): the same `request(method, url, body, headers)`
call, the same answer attributes the SDK reads, on one thread-safe urllib3 pool with keep-alive
connections, TLS verified against the SDK's CA bundle. Errors propagate as urllib3 exceptions,
which the SDK turns into ClientNetworkError as before. When the SDK found a proxy in the
environment, its own connection is kept.
"""

from __future__ import annotations

from typing import Any

import certifi
import urllib3


class _Answer:
    """What the SDK reads of an HTTP answer (status_code, content, headers; raw, reason and
    text for its debug log)."""

    __slots__ = ("content", "headers", "raw", "reason", "status_code")

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self.raw = raw
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.headers  # case-insensitive
        self.content = raw.data

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class Urllib3Connection:
    """Drop-in for the SDK's ProxyConnection (no proxy)."""

    def __init__(self, host: str, timeout: float, *, pool_size: int = 8) -> None:
        self.request_host = host
        self.request_length = 0
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), retries=False
        )

    def request(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> _Answer:
        headers = dict(headers or {})
        headers.setdefault("Host", self.request_host)
        data = body.encode() if isinstance(body, str) else body
        self.request_length = len(data or b"")
        raw = self._pool.request(
            method,
            url,
            body=data,
            headers=headers,
            timeout=self._timeout,
            redirect=False,
            preload_content=True,
        )
        return _Answer(raw)


def install(sdk_client: Any, host: str, timeout: float) -> bool:
    """Give `sdk_client` the lighter transport unless the SDK is going through a proxy; whether
    it was installed."""
    api_request = getattr(sdk_client, "request", None)
    current = getattr(api_request, "conn", None)
    if current is None or getattr(current, "proxy", None):
        return False
    api_request.conn = Urllib3Connection(host, timeout)
    return True
