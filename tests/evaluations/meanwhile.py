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
from tests.concurrency import Competing

WAIT = 1.5  # seconds the competing request is given while the first one holds its lock


class Meanwhile:
    def __init__(self, app: Any, action: Callable[[Any], Any]) -> None:
        self.app, self.action = app, action
        self.other: Competing | None = None
        self.waited: bool | None = None

    def now(self) -> datetime:
        if self.other is None and threading.current_thread() is threading.main_thread():
            self.other = Competing(self.app, self.action, wait=WAIT)
            self.waited = self.other.waited
        return clock.now()

    def __getattr__(self, name: str) -> Any:  # timestamp() and the rest: the real clock
        return getattr(clock, name)

    def finish(self) -> Any:
        """The competing request's answer, once it has one."""
        assert self.other is not None, "the write path never reached its write"
        return self.other.result()


def meanwhile(monkeypatch: Any, module: Any, app: Any, action: Callable[[Any], Any]) -> Meanwhile:
    """Run `action(client)` alongside the next request through `module`'s write path."""
    other = Meanwhile(app, action)
    monkeypatch.setattr(module, "clock", other)
    return other
