"""A competing request for race tests: run in a thread of its own (its own test client and
session) while the test's request is paused at a chosen point, and given a moment to finish.
`waited` says whether it could not (it blocks on a lock the paused request holds)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from core.db import db

WAIT = 1.5  # seconds: far more than an unblocked request needs


class Competing:
    def __init__(self, app: Any, request: Callable[[Any], Any], *, wait: float = WAIT) -> None:
        self.answer: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(app, request), daemon=True)
        self.thread.start()
        self.thread.join(wait)
        self.waited = self.thread.is_alive()

    def _run(self, app: Any, request: Callable[[Any], Any]) -> None:
        try:
            self.answer = request(app.test_client())
        except BaseException as exc:  # raised again by result()
            self.error = exc
        finally:
            db.remove()

    def result(self) -> Any:
        """Its answer, once it has one (its error raised here)."""
        self.thread.join(30)
        assert not self.thread.is_alive(), "the competing request never finished"
        if self.error is not None:
            raise self.error
        return self.answer
