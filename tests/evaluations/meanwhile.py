"""Run a competing request while a write path sits between its state check and its write.

A service module's `clock` is replaced by `Meanwhile`: the first `now()` the test's own thread
asks for (in these paths: after the state is checked, before anything is written) runs another
request in a second thread with its own test client and session, and gives it `WAIT` seconds.
A write path that locks what it checks makes that request wait until the first one commits;
one that does not lets it through on the state the first one is about to change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core import clock
from core.db import db

WAIT = 1.5  # seconds the competing request is given while the first one holds its lock


class Meanwhile:
    def __init__(self, app: Any, action: Callable[[Any], Any]) -> None:
        self.app, self.action = app, action
        self.worker: threading.Thread | None = None
        self.waited: bool | None = None
        self.answer: Any = None

    def now(self) -> datetime:
        if self.worker is None and threading.current_thread() is threading.main_thread():
            self.worker = threading.Thread(target=self._run, daemon=True)
            self.worker.start()
            self.worker.join(WAIT)
            self.waited = self.worker.is_alive()
        return clock.now()

    def __getattr__(self, name: str) -> Any:  # timestamp() and the rest: the real clock
        return getattr(clock, name)

    def _run(self) -> None:
        try:
            self.answer = self.action(self.app.test_client())
        except Exception as exc:  # the test's assertion names it
            self.answer = exc
        finally:
            db.remove()

    def finish(self) -> Any:
        """The competing request's answer, once it has one."""
        assert self.worker is not None, "the write path never reached its write"
        self.worker.join(30)
        assert not self.worker.is_alive(), "the competing request never finished"
        return self.answer


def meanwhile(monkeypatch: Any, module: Any, app: Any, action: Callable[[Any], Any]) -> Meanwhile:
    """Run `action(client)` alongside the next request through `module`'s write path."""
    other = Meanwhile(app, action)
    monkeypatch.setattr(module, "clock", other)
    return other
