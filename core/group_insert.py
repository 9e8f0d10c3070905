"""Rows that must be committed before their request answers, written together.

Each caller waits until its own row is committed (nothing is acknowledged before it is durable),
but the threads of a process that write at the same moment share one INSERT and one commit: the
first to arrive leads and writes everything queued; those that arrive meanwhile wait and are
written by the next leader (the first of them, woken for that). Under load a commit's disk wait
is paid once per batch instead of once per row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, insert


class _Slot:
    __slots__ = ("row", "event", "error", "lead")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.event = threading.Event()
        self.error: BaseException | None = None
        self.lead = False


class GroupInsert:
    def __init__(
        self, table: Table, connect: Callable[[], Any], *, max_batch: int = 500, timeout: float = 30.0
    ) -> None:
        self._table = table
        self._connect = connect  # an autocommit connection: one statement, committed when it returns
        self._max = max_batch
        self._timeout = timeout
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._leading = False

    def write(self, row: dict[str, Any]) -> None:
        """Insert `row`; returns once it is committed (raises what the insert raised)."""
        slot = _Slot(row)
        with self._lock:
            self._queue.append(slot)
            slot.lead = not self._leading
            self._leading = True
        if not slot.lead:
            if not slot.event.wait(self._timeout):
                raise TimeoutError("group insert did not complete")
        if slot.lead:
            self._lead()
        if slot.error is not None:
            raise slot.error

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
        try:
            with self._connect() as conn:
                conn.execute(insert(self._table), [s.row for s in batch])
        except Exception:
            # One bad row must not fail the others: write them one by one, each keeps its error.
            for s in batch:
                try:
                    with self._connect() as conn:
                        conn.execute(insert(self._table), [s.row])
                except Exception as exc:
                    s.error = exc
        with self._lock:
            nxt = self._queue[0] if self._queue else None
            if nxt is None:
                self._leading = False
            else:
                nxt.lead = True  # hand over: the first waiter writes the next batch
        for s in batch:
            s.event.set()
        if nxt is not None:
            nxt.event.set()
