"""Run a simulator (a WSGI app) as a real HTTP server on localhost, in a thread or in the foreground."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class ThreadedSimulator:
    """A simulator served from a background thread; `url` is its base URL."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> ThreadedSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)


def serve_forever(app: Any, host: str, port: int) -> None:
    """Serve in the foreground (used by `make run`)."""
    make_server(host, port, app, threaded=True).serve_forever()


class _KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # connections stay open between requests, as real gateways keep them

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line per request: at push rates the log would cost more than the request."""


def serve_keepalive(app: Any, host: str, port: int) -> None:
    """Serve in the foreground with HTTP/1.1 keep-alive (high-rate simulators: push gateways)."""
    make_server(host, port, app, threaded=True, request_handler=_KeepAliveHandler).serve_forever()


def add_control_index(app: Any, doc: str | None) -> None:
    """Serve the simulator's module docstring (its control API) at GET /_sim/."""
    from flask import Response

    def index() -> Response:
        return Response(doc or "", mimetype="text/plain; charset=utf-8")

    app.add_url_rule("/_sim/", "sim_index", index, methods=["GET"])


class FaultQueue:
    """Injected failures for the next calls, in order: each {..., times} answers `times` calls.

    Thread-safe; `add` takes a control-API body (only the listed keys are kept).
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self._lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []

    def add(self, body: dict[str, Any]) -> int:
        fault = {k: body.get(k) for k in self.keys} | {"times": int(body.get("times", 1))}
        with self._lock:
            self._faults.append(fault)
            return len(self._faults)

    def take(self) -> dict[str, Any] | None:
        """The fault for this call, if one is armed."""
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault["times"] -= 1
            if fault["times"] <= 0:
                self._faults.pop(0)
            return dict(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
