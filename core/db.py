"""SQLAlchemy 2 engine and scoped session, bound to the app in one place; the declarative base,
ids, the UTC time type, constraint names from errors and the row locks of write paths.
Statements run on the driver directly live in core/db_statements.py."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every table; one metadata for Alembic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_id_lock = threading.Lock()
_last = {"ms": 0, "seq": 0}


def ordered_id() -> str:
    """A UUID in the version-7 layout that sorts by creation: milliseconds, a counter, random.

    Inbox pages and stream resumption order by (created_at, id); ids made later in a process
    sort later, so notifications of the same instant keep the order they were made in.
    """
    with _id_lock:
        ms, seq = time.time_ns() // 1_000_000, 0
        if ms <= _last["ms"]:
            ms, seq = _last["ms"], _last["seq"] + 1
            if seq > 0xFFF:
                ms, seq = ms + 1, 0
        _last.update(ms=ms, seq=seq)
    rand = int.from_bytes(os.urandom(8), "big") >> 2
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0x2 << 62) | rand
    return str(uuid.UUID(int=value))


def new_id() -> str:
    """A random UUID string, the primary key of most tables."""
    return str(uuid.uuid4())


_ID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_id(value: object) -> bool:
    """True for a string in the form new_id and ordered_id make; anything else names nothing.

    Checked before a lookup so that an id from a URL that cannot be a key (a NUL byte, which
    PostgreSQL text refuses, or a thousand characters) is simply not found.
    """
    return isinstance(value, str) and _ID_FORM.fullmatch(value) is not None


class IdMixin:
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout. A statement's
    parameters never appear in its errors (hide_parameters): they are logged with the traceback,
    and a parameter may be a phone number, a password hash or an encrypted secret."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800, hide_parameters=True
    )
    _ping_when_idle(engine)
    _cache_placeholder_conversion()
    return engine


# psycopg rewrites a statement's %(name)s placeholders to $n on every execution and caches that
# work only for statements of at most 50 parameters (against generated multi-row INSERTs of
# ever-changing shape). The write paths' combined INSERT (insert_rows) has 60-70 and one fixed
# shape per path, so its conversion was redone every time: ~4 % of a submission's CPU.
# The cache stays bounded (an LRU of 128 statements) and keyed by the statement text.
STATEMENT_PARAMS_CACHED = 100


def _cache_placeholder_conversion() -> None:
    from psycopg import _queries

    if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", STATEMENT_PARAMS_CACHED) < STATEMENT_PARAMS_CACHED:
        _queries.MAX_CACHED_STATEMENT_PARAMS = STATEMENT_PARAMS_CACHED


PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle; a dead one is replaced.

    pool_pre_ping would add a round trip to every request; a connection used a moment ago is
    alive, and one that dies mid-use is invalidated by SQLAlchemy's disconnect handling.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
            dbapi_conn.rollback()
        except Exception as exc:  # any failure means the connection is gone
            raise DisconnectionError("stale pooled connection") from exc


class Database:
    """Holds the engine, the request/job-scoped session, and a read-only session for reads."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session: scoped_session = scoped_session(sessionmaker(expire_on_commit=False))
        # Reads that need no transaction (a single SELECT) run in autocommit: no BEGIN and no
        # ROLLBACK round trips. Later this is where a replica URL would plug in.
        self.reader: scoped_session = scoped_session(sessionmaker(expire_on_commit=False))

    def configure(self, url: str, *, pool_size: int = 5) -> None:
        """Bind to a database URL (called by the app factory and the workers)."""
        if self.engine is not None:
            self.session.remove()
            self.reader.remove()
            self.engine.dispose()
        self.engine = make_engine(url, pool_size=pool_size)
        self.session.configure(bind=self.engine)
        self.reader.configure(bind=self.engine.execution_options(isolation_level="AUTOCOMMIT"))

    def autocommit(self) -> Any:
        """A connection on the primary where each statement is its own transaction (one round
        trip, committed when it returns): for lone writes such as a ledger line."""
        assert self.engine is not None
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def remove(self) -> None:
        """End both sessions of this thread."""
        self.session.remove()
        self.reader.remove()

    def init_app(self, app: Any) -> None:
        """Configure from app.config and remove the session after each request."""
        self.configure(app.config["DATABASE_URL"], pool_size=app.config["DATABASE_POOL_SIZE"])

        @app.teardown_request
        def _remove_request_session(_exc: BaseException | None) -> None:
            # Each request ends its session, even where an outer app context lives on.
            self.remove()

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.remove()


db = Database()

_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def constraint_of(exc: Exception) -> str | None:
    """The name of the constraint an integrity error broke, or None when it names none.

    PostgreSQL names it. SQLite names only the columns of a unique constraint or index
    ("UNIQUE constraint failed: t.a, t.b"), matched here against the table's declared ones
    (primary key included); its other failures (NOT NULL, foreign key, CHECK) give None.
    A caller that treats one unique violation as "already done" compares the name, so any
    other integrity error still fails loudly instead of passing for a duplicate."""
    orig = getattr(exc, "orig", exc)
    name = getattr(getattr(orig, "diag", None), "constraint_name", None)
    if name:
        return str(name)
    message = str(orig)
    if not message.startswith(_SQLITE_UNIQUE):
        return None
    named = re.fullmatch(r"index '([^']+)'", message[len(_SQLITE_UNIQUE) :].strip())
    if named:  # a unique index on expressions: SQLite names the index itself
        return named.group(1)
    qualified = [part.strip() for part in message[len(_SQLITE_UNIQUE) :].split(",")]
    table = Base.metadata.tables.get(qualified[0].split(".", 1)[0])
    if table is None:
        return None
    columns = {part.split(".", 1)[-1] for part in qualified}
    declared = [c for c in table.constraints if isinstance(c, UniqueConstraint | PrimaryKeyConstraint)]
    for candidate in [*declared, *(i for i in table.indexes if i.unique)]:
        if {c.name for c in candidate.columns} == columns:
            return str(candidate.name)
    return None


def take_write_lock(session: Any, table: Any, *where: Any, params: dict[str, Any] | None = None) -> None:
    """SQLite only: start the transaction with a write, so the read that follows cannot race.

    PostgreSQL's SELECT ... FOR UPDATE locks the row; SQLite ignores FOR UPDATE and its
    driver begins a transaction only at the first write, so two sessions could both read the
    old state and both act on it. A no-op UPDATE takes SQLite's single write lock first.
    `params` binds a condition built once at module level: a hot path then builds nothing here
    on PostgreSQL.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    column = next(iter(table.primary_key.columns))
    session.execute(sa_update(table).where(*where).values({column.name: column}), params)


def lock_one(session: Any, cls: Any, *where: Any, params: dict[str, Any] | None = None) -> Any:
    """The one `cls` row matching `where`, read afresh (not a copy the session held) and locked
    until the transaction ends, or None: a write that must not race takes it first, so of two at
    once the second waits and then judges what the first left (PostgreSQL: SELECT ... FOR UPDATE;
    SQLite: its one write lock, `take_write_lock`)."""
    take_write_lock(session, cls.__table__, *where, params=params)
    stmt = select(cls).where(*where).with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt, params)


def in_batches(session: Any, ids: Any, work: Callable[[list[Any]], None], *, batch: int, batches: int) -> int:
    """Run `work` on the ids `ids` (a SELECT of one column) yields, `batch` at a time and at most
    `batches` times, committing after each: a purge that must not hold one long transaction, and
    whose rest waits for the next pass. `work` must take the ids out of what `ids` selects. How
    many ids were worked on."""
    done = 0
    for _ in range(batches):
        chosen = list(session.scalars(ids.limit(batch)))
        if chosen:
            work(chosen)
            done += len(chosen)
        session.commit()
        if len(chosen) < batch:
            break
    return done


# Transactions aborted by a conflict with another (PostgreSQL SQLSTATEs), not an outage: the
# same request may well succeed a moment later.
CONFLICT_SQLSTATES = {"40P01": "deadlock", "40001": "serialization_failure", "55P03": "lock_not_available"}


def transaction_conflict(exc: BaseException) -> str | None:
    """Which conflict between transactions aborted this statement ("deadlock",
    "serialization_failure", "lock_not_available"; "database_locked" for SQLite's busy timeout),
    or None when it is something else."""
    if not isinstance(exc, OperationalError):
        return None
    kind = CONFLICT_SQLSTATES.get(getattr(exc.orig, "sqlstate", None) or "")
    if kind is None and "database is locked" in str(exc.orig):
        return "database_locked"
    return kind


def database_away(exc: BaseException) -> bool:
    """A lost or refused database connection (or one that timed out), as opposed to an error
    about what was asked of it: worth trying again later, not anyone's fault to record."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


def lock_not_available(exc: BaseException) -> bool:
    """A `FOR UPDATE NOWAIT` that found the row locked, or a lock wait past `lock_timeout`
    (PostgreSQL 55P03)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03"
