"""办件编号 (case numbers): a configurable format and a serial that is unique under concurrency.

The default follows what provinces are observed to use: the 31-character 实施编码, the day in
Beijing time (yyyyMMdd) and a 4-digit serial per item and day. A province that differs sets
`CASE_NUMBER_FORMAT` (fields: code, date, serial; the serial scope is everything before
`{serial`). The serial comes from one upsert on `case_serials` (INSERT … ON CONFLICT DO UPDATE …
RETURNING), which PostgreSQL and SQLite both run atomically, and `applications.case_number` is
unique as a last guard.

On PostgreSQL the upsert is a transaction of its own, on a second pooled connection: every
submission of an item on one day takes the same serial row, and inside the submission's
transaction its lock was held through the rest of the writes and the commit, so concurrent
submissions queued behind each other (measured with `python -m bench.run`: 93-110
submissions/s with p99 700-800 ms before, 106-150/s with p99 410-611 ms after). The price is a
gap in the serial when a submission fails after taking its number, as a database sequence leaves
one; numbers stay unique. That transaction commits without waiting for its own WAL flush (see
`_PG_RELAXED_UPSERT`): one disk flush per submission instead of two.

On PostgreSQL each process also reserves its serials in blocks (`CASE_NUMBER_BLOCK`, default
10: one upsert adds 10 and the process hands the 10 numbers out itself), the way a database
sequence with CACHE 10 does. The serial row is then written once per ten submissions, not
once per submission. Numbers stay unique across processes and hosts; what a block costs: two
processes' numbers interleave (a later submission may get a lower number than an earlier one
from another process), and a process that stops leaves the rest of its block unused, a gap.
`CASE_NUMBER_BLOCK=1` gives numbers in the order they were taken, at one upsert each. A block's
reservation is committed durably. If the database still loses it (a failover to a replica that had
not received it, a restore), a process may hold numbers the table hands out again; the unique
`case_number` then refuses the second submission with one, which answers 503
`application.case_number_retry` and makes the process drop every block it holds, so the
citizen's retry takes a number from a fresh block.
SQLite has one writer at a time anyway and runs it, one number at a time, inside the
submission's transaction (a block reserved there would be rolled back with a failed
submission while the process went on handing its numbers out).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from core.db_statements import first_row_autocommit
from domain.applications.models import Application, CaseSerial

BEIJING = ZoneInfo("Asia/Shanghai")
DEFAULT_FORMAT = "{code}{date:%Y%m%d}{serial:04d}"


def _upsert(insert: Any) -> Any:
    stmt = insert(CaseSerial).values(scope=bindparam("scope"), last=1)
    return stmt.on_conflict_do_update(
        index_elements=[CaseSerial.scope], set_={"last": CaseSerial.last + 1}
    ).returning(CaseSerial.last)


# The same upsert, committed without waiting for its own WAL flush (synchronous_commit off for
# this one transaction, set from inside the statement: it runs in autocommit). No number is lost
# or reused by that: the submission that uses the number commits later, synchronously, and a
# WAL flush covers every record before it, the serial's included. A crash before that commit
# loses the increment and the submission together, so the number was never given out.
_PG_RELAXED_UPSERT = text(
    "INSERT INTO case_serials (scope, last) SELECT :scope, 1"
    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed"
    " ON CONFLICT (scope) DO UPDATE SET last = case_serials.last + 1 RETURNING case_serials.last"
)
# The same, reserving a block: the last number of the block comes back. Committed durably (one
# disk flush per block): the process hands the block's numbers out from memory, so a crash of the
# database that lost the reservation would otherwise let another process reserve them again.
_PG_RESERVE = text(
    "INSERT INTO case_serials (scope, last) VALUES (:scope, :size)"
    " ON CONFLICT (scope) DO UPDATE SET last = case_serials.last + :size RETURNING case_serials.last"
)
_SQLITE_UPSERT = _upsert(sqlite.insert)


def next_serial(session: Session, scope: str) -> int:
    """The next serial of `scope`, one upsert per number (inside the session's transaction on
    SQLite, in one of its own on PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        row = first_row_autocommit(session, _PG_RELAXED_UPSERT, {"scope": scope}, apart=True)
        return int(row[0])
    return int(session.execute(_SQLITE_UPSERT, {"scope": scope}).scalar_one())


def reserve_serials(session: Session, scope: str, size: int) -> int:
    """PostgreSQL: reserve the next `size` serials of `scope` in a transaction of their own;
    returns the last of them."""
    row = first_row_autocommit(session, _PG_RESERVE, {"scope": scope, "size": size}, apart=True)
    return int(row[0])


class SerialBlocks:
    """The serials this process has reserved and not yet handed out, per scope.

    Thread-safe. A scope's block is reserved under that scope's own lock, so two threads of the
    process never reserve one each for the same need, while the other scopes' submissions go on
    (a reservation that waits on the database holds up one item's submissions, not every
    item's). A process forked from one that held blocks starts with none (the parent's would
    otherwise be handed out twice) and with fresh locks (a thread of the parent may have held
    one at the fork, and no thread of the child would ever release it)."""

    _KEEP = 512  # scopes remembered: a day's items; older days' leftovers are dropped

    def __init__(self, size: int) -> None:
        if not 1 <= size <= 1000:
            raise ValueError("CASE_NUMBER_BLOCK must be between 1 and 1000")
        self.size = size
        self._start_afresh()
        ref = weakref.ref(self)

        def in_child() -> None:
            blocks = ref()
            if blocks is not None:
                blocks._start_afresh()

        os.register_at_fork(after_in_child=in_child)

    def _start_afresh(self) -> None:
        self._lock = threading.Lock()  # guards the two dicts, never held across a reservation
        self._free: dict[str, tuple[int, int]] = {}  # scope -> (next, last) of the current block
        self._reserving: dict[str, threading.Lock] = {}  # scope -> the lock its reservation takes

    def forget(self) -> None:
        """Drop every reserved serial (the table was emptied or restored under the process)."""
        with self._lock:
            self._free.clear()

    def take(self, scope: str, reserve: Callable[[int], int]) -> int:
        """The next serial of `scope`; `reserve(size)` reserves a block and returns its last."""
        with self._lock:
            serial = self._next(scope)
            if serial is not None:
                return serial
            reserving = self._reserving.setdefault(scope, threading.Lock())
        with reserving:
            with self._lock:
                serial = self._next(scope)  # another thread reserved a block meanwhile
                if serial is not None:
                    return serial
            last = reserve(self.size)
            with self._lock:
                if self.size > 1:
                    self._free[scope] = (last - self.size + 2, last)
                    self._trim()
                return last - self.size + 1

    def _next(self, scope: str) -> int | None:
        nxt, last = self._free.pop(scope, (1, 0))
        if nxt > last:
            return None
        if nxt < last:
            self._free[scope] = (nxt + 1, last)
        return nxt

    def _trim(self) -> None:
        while len(self._free) > self._KEEP:
            del self._free[next(iter(self._free))]
        if len(self._reserving) > self._KEEP:  # the oldest scopes' locks nobody holds or waits on
            idle = [s for s, lock in self._reserving.items() if not lock.locked() and s not in self._free]
            for scope in idle[: len(self._reserving) - self._KEEP]:
                del self._reserving[scope]


class CaseNumbers:
    def __init__(self, fmt: str = DEFAULT_FORMAT, *, block: int = 1) -> None:
        if "{serial" not in fmt:
            raise ValueError("CASE_NUMBER_FORMAT needs a {serial} field")
        self.fmt = fmt
        self._scope_fmt = fmt[: fmt.index("{serial")]
        self._blocks = SerialBlocks(block)
        # Fail at start-up, not at the first submission, when the format is wrong or makes
        # numbers longer than the column holding them (a 31-character code, a six-digit serial).
        sample = self.format(
            code="X" * 31, when=datetime(2026, 12, 31, 23, 59, 59, tzinfo=BEIJING), serial=999999
        )
        width = Application.__table__.c.case_number.type.length
        if len(sample) > width:
            raise ValueError(
                f"CASE_NUMBER_FORMAT makes case numbers of {len(sample)} characters; at most {width} fit"
            )

    def forget_reserved(self) -> None:
        """Hand out no serial reserved so far: the next one is reserved afresh."""
        self._blocks.forget()

    def format(self, *, code: str, when: datetime, serial: int) -> str:
        return self.fmt.format(code=code, date=when.astimezone(BEIJING), serial=serial)

    def next(self, session: Session, *, code: str, when: datetime) -> str:
        local = when.astimezone(BEIJING)
        scope = (self._scope_fmt.format(code=code, date=local) or "all")[:64]
        if self._blocks.size > 1 and session.get_bind().dialect.name == "postgresql":
            serial = self._blocks.take(scope, lambda size: reserve_serials(session, scope, size))
        else:
            serial = next_serial(session, scope)
        return self.format(code=code, when=local, serial=serial)
