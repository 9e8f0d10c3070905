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


class SessionPool:
    """`get()` returns this thread's session in this process, created on first use."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None or getattr(self._local, "pid", None) != os.getpid():
            session = requests.Session()
            self._local.session, self._local.pid = session, os.getpid()
        return session

    def close(self) -> None:
        """Close this thread's session (others close with their threads)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None
