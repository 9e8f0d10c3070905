"""Rows that must not be lost, inserted in batches off the request path.

A request that must leave a row behind (the data-use ledger line of a third-party access) hands
it to the spool and goes on. `write` appends the row to this process's segment file on local
disk, one `write(2)`, which survives the process being killed, SIGKILL included, and keeps it in
memory; a background thread inserts what has gathered every `interval` seconds in one statement,
then deletes the segment. A request thus pays a file append instead of a commit.

Each segment is held under an exclusive `flock` by the process that writes it, for as long as any
of its rows is not in the database. A process that dies releases its locks; every `recover_every`
seconds each spool thread of the same directory looks for segments nobody holds, inserts their
rows and deletes them. Inserts skip rows already present (ON CONFLICT DO NOTHING on the primary
key), so a segment read twice is inserted once. A row is lost only if the host itself loses the
file (power loss before the kernel wrote its page cache): syncing every row would put a disk
wait back into every request.

When the database does not take the rows they stay spooled and are retried. A row the database
refuses (its account purged meanwhile) is dropped and counted in the log. `accepting()` turns
false past `max_pending` rows, so callers can stop doing what must be recorded instead of doing
it unrecorded.

`interval` 0 is write-through: `write` inserts before it returns (tests, one-off tools).

`backlog()` tells operators how far the host is behind: the segments on its disk that still hold
rows (every process's, and those of stopped processes not yet recovered), their size, and how
long ago the oldest of them was last written.
"""

from __future__ import annotations

import atexit
import fcntl
import itertools
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

log = logging.getLogger("yiwang.spool")

_REFUSED = (IntegrityError, DataError)  # this row can never go in; anything else is retried


class Backlog(NamedTuple):
    """Rows of a spool directory not yet in the database, as its files show them."""

    segments: int  # segment files holding rows, of every process on the host
    bytes: int
    oldest_seconds: float  # since the least recently written of them was last written; 0 if none


class _Segment:
    __slots__ = ("path", "fd", "rows", "writers")

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.rows: list[dict[str, Any]] = []
        self.writers = 0  # threads writing to the file right now


class Spool:
    def __init__(
        self,
        table: Table,
        connect: Callable[[], Any],
        directory: Path,
        *,
        interval: float = 0.2,
        max_pending: int = 100_000,
        max_batch: int = 1000,
        dates: Iterable[str] = (),
        recover_every: float = 30.0,
    ) -> None:
        self._table = table
        self._connect = connect  # an autocommit connection: each statement committed when it returns
        self._dir = Path(directory)
        self._interval = interval
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._dates = tuple(dates)
        self._recover_every = recover_every
        self._lock = threading.Lock()  # the current segment, the sealed ones, the pending count
        self._flush_lock = threading.Lock()  # one flush at a time
        self._pid = -1
        self._current: _Segment | None = None
        self._sealed: list[_Segment] = []
        self._pending = 0
        self._seq = itertools.count(1)
        self._tag = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing -----------------------------------------------------------------------------

    def accepting(self) -> bool:
        """False while more than `max_pending` rows wait for the database."""
        return self._pending < self._max_pending

    def write(self, row: dict[str, Any]) -> None:
        """Spool `row` (a dict of column values with a primary key); durable on this host once
        this returns. Raises OSError when the spool directory cannot be written."""
        encoded = {k: (v.isoformat() if k in self._dates and v is not None else v) for k, v in row.items()}
        data = (json.dumps(encoded, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._claim_process()
            segment = self._current or self._open_segment()
            segment.writers += 1
        # The file write happens outside the lock: the lock is never held across a system call,
        # so request threads do not queue behind each other's disk writes.
        try:
            if os.write(segment.fd, data) != len(data):
                raise OSError("short write to the spool")
        except BaseException:
            with self._lock:
                segment.writers -= 1
            raise
        with self._lock:
            segment.rows.append(row)
            segment.writers -= 1
            self._pending += 1
        if self._interval <= 0:
            self.flush()

    def backlog(self) -> Backlog:
        """What waits in this spool's directory (all processes of the host). A healthy spool
        empties its segments within `interval`: segments that are minutes old mean the database
        does not take the rows (their count grows) or a stopped process's rows wait for the next
        recovery (at most `recover_every`)."""
        segments = size = 0
        oldest: float | None = None
        for path in self._dir.glob("*.jsonl") if self._dir.exists() else ():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # inserted and deleted meanwhile
            if st.st_size == 0:
                continue  # a process's next segment, nothing in it yet
            segments += 1
            size += st.st_size
            oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
        return Backlog(
            segments, size, round(max(0.0, time.time() - oldest), 3) if oldest is not None else 0.0
        )

    def _claim_process(self) -> None:
        """After a fork the child owns none of the parent's segments and runs its own thread."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._tag = secrets.token_hex(4)
        self._current, self._sealed, self._pending = None, [], 0
        self._stop = threading.Event()
        self._thread = None
        if self._interval > 0:
            self._thread = threading.Thread(target=self._run, name="spool", daemon=True)
            self._thread.start()
            atexit.register(self.close)
            # A fork while this process's thread holds a lock (gunicorn with preload_app) must not
            # leave the child with a lock nobody will release.
            os.register_at_fork(after_in_child=self._fresh_locks)

    def _fresh_locks(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def start(self) -> None:
        """Start this process's spool thread now (it also starts with the first row): it
        recovers segments that dead processes left behind."""
        with self._lock:
            self._claim_process()

    def _open_segment(self) -> _Segment:
        self._current = self._new_segment()
        return self._current

    def _new_segment(self) -> _Segment:
        """A new, locked, empty segment file (creating a file can take milliseconds: the thread
        makes the next one before it seals the current, so requests seldom wait for it)."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{self._pid}-{self._tag}-{next(self._seq)}.jsonl"
        hidden = self._dir / f".{name}"  # recover() ignores it until it is locked
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, self._dir / name)
        return _Segment(self._dir / name, fd)

    # -- flushing ----------------------------------------------------------------------------

    def flush(self) -> int:
        """Insert every spooled row of this process; the number inserted. Rows the database
        could not take stay spooled for the next flush."""
        with self._flush_lock:
            current = self._current
            busy = current is not None and bool(current.rows or current.writers)
            keep_on = self._interval > 0 and not self._stop.is_set() and self._pid == os.getpid()
            spare = self._new_segment() if busy and keep_on else None
            with self._lock:
                if self._current is not None and (self._current.rows or self._current.writers):
                    self._sealed.append(self._current)
                    self._current = spare
                    spare = None
                sealed = list(self._sealed)
            if spare is not None:  # nothing was written: the old segment stays current
                os.unlink(spare.path)
                os.close(spare.fd)
            done = 0
            for segment in sealed:
                while segment.writers:  # a row being written to it when it was sealed
                    time.sleep(0.0005)
                if segment.rows and not self._insert(segment.rows):
                    break
                os.unlink(segment.path)
                os.close(segment.fd)
                with self._lock:
                    self._sealed.remove(segment)
                    self._pending -= len(segment.rows)
                done += len(segment.rows)
            return done

    def _statement(self, dialect: str) -> Any:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        return insert(self._table).on_conflict_do_nothing()

    def _insert(self, rows: list[dict[str, Any]]) -> bool:
        """Insert `rows`; False when the database did not answer (retry later)."""
        try:
            with self._connect() as conn:
                stmt = self._statement(conn.dialect.name)
                for start in range(0, len(rows), self._max_batch):
                    conn.execute(stmt, rows[start : start + self._max_batch])
            return True
        except _REFUSED:
            return self._insert_one_by_one(rows)
        except SQLAlchemyError as exc:
            log.warning(
                "spool insert failed, rows kept", extra={"rows": len(rows), "error": type(exc).__name__}
            )
            return False

    def _insert_one_by_one(self, rows: list[dict[str, Any]]) -> bool:
        refused = 0
        try:
            with self._connect() as conn:
                stmt = self._statement(conn.dialect.name)
                for row in rows:
                    try:
                        conn.execute(stmt, [row])
                    except _REFUSED:
                        refused += 1
        except SQLAlchemyError as exc:
            log.warning(
                "spool insert failed, rows kept", extra={"rows": len(rows), "error": type(exc).__name__}
            )
            return False
        log.error("spool rows refused by the database and dropped", extra={"rows": refused})
        return True

    # -- the thread and recovery ---------------------------------------------------------------

    def _run(self) -> None:
        next_recovery = 0.0
        while not self._stop.wait(self._interval):
            try:
                self.flush()
                if time.monotonic() >= next_recovery:
                    self.recover()
                    next_recovery = time.monotonic() + self._recover_every
            except Exception:  # the thread must outlive one bad flush
                log.exception("spool flush failed")

    def recover(self) -> int:
        """Insert and delete the segments no live process holds; the number of rows inserted."""
        done = 0
        for path in sorted(self._dir.glob("*.jsonl")):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another process recovered it
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is alive
                if os.fstat(fd).st_nlink == 0:
                    continue  # recovered by another process while this one waited
                with os.fdopen(os.dup(fd), "rb") as f:
                    rows = self._parse(f.read(), path)
                if rows and not self._insert(rows):
                    continue
                os.unlink(path)
                done += len(rows)
            finally:
                os.close(fd)
        if done:
            log.info("spool recovered rows of a stopped process", extra={"rows": done})
        return done

    def _parse(self, data: bytes, path: Path) -> list[dict[str, Any]]:
        rows = []
        lines = data.split(b"\n")
        for raw in lines[:-1]:  # the last piece is empty, or a line cut short by the kill
            try:
                row = json.loads(raw)
            except ValueError:
                log.error("spool line unreadable, skipped", extra={"segment": path.name})
                continue
            for name in self._dates:
                if row.get(name) is not None:
                    row[name] = datetime.fromisoformat(row[name])
            rows.append(row)
        return rows

    def close(self) -> None:
        """Stop the thread and insert what is spooled (what the database refuses stays on disk
        for another process to recover)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._pid == os.getpid():
            self.flush()
            with self._lock:
                idle, self._current = self._current, None
            if idle is not None and not idle.rows:  # the empty segment kept ready for the next row
                os.unlink(idle.path)
                os.close(idle.fd)
            elif idle is not None:
                self._current = idle
