"""Whether this process is shutting down, for long requests that should end early (live streams).

gunicorn.conf.py registers the worker's liveness at start-up; elsewhere (tests, the Flask
development server) nothing is registered and the process is never draining.
"""

from __future__ import annotations

from collections.abc import Callable

_alive: list[Callable[[], bool]] = []


def register(alive: Callable[[], bool]) -> None:
    """Tell the app how to ask whether the server still takes requests."""
    _alive[:] = [alive]


def draining() -> bool:
    """True once the server has been told to stop (SIGTERM): finish and close long requests."""
    return bool(_alive) and not _alive[0]()
