"""Pooled HTTP sessions for provider clients: one `requests.Session` per thread and process.

A Session keeps keep-alive connections (start + complete stay cheap under load) but is not
thread-safe, and a pool inherited across gunicorn's fork would share sockets between workers.
`requests` is what the WeChat and Tencent Cloud SDKs already load, so the clients add no second
HTTP stack to every worker's memory. Proxy variables (HTTPS_PROXY, NO_PROXY) are honoured.
"""

from __future__ import annotations

import os
import threading

import requests

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class SessionPool:
    """`get()` returns this thread's session in this process, created on first use."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None or getattr(self._local, "pid", None) != os.getpid():
            session = requests.Session()
            # With no proxy configured, read the environment once here rather than on every call
            # (requests' per-call look at proxy variables and ~/.netrc is a visible share of a
            # small call's CPU): only the CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) applies.
            if not any(os.environ.get(v) for v in _PROXY_VARIABLES):
                session.trust_env = False
                session.verify = (
                    os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
                )
            self._local.session, self._local.pid = session, os.getpid()
        return session

    def close(self) -> None:
        """Close this thread's session (others close with their threads)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None
