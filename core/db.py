"""SQLAlchemy 2 engine and scoped session, bound to the app in one place."""

from __future__ import annotations

import functools
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    select,
)
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql.elements import ClauseElement
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


def single_statement_connection(session: Any) -> Any:
    """The session's connection for a statement that is a transaction on its own: autocommit
    (no BEGIN, no COMMIT round trips) when the session has no transaction open yet; inside an
    open one, that transaction (the caller's commit ends it either way)."""
    if session.in_transaction():
        return session.connection()
    return session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


@functools.cache
def _precompiled(statement: Any, dialect: Any) -> tuple[str, dict[str, Any], tuple[str, ...] | None]:
    """SQL, constants, and for a positional paramstyle (SQLite's `?`) the parameters' order."""
    compiled = statement.compile(dialect=dialect)
    order = tuple(compiled.positiontup) if dialect.positional and compiled.positiontup else None
    return compiled.string, {k: v for k, v in compiled.params.items() if v is not None}, order


def _driver_params(values: dict[str, Any], order: tuple[str, ...] | None) -> Any:
    return values if order is None else tuple(values[name] for name in order)


def run_precompiled(session: Any, statement: Any, params: dict[str, Any]) -> Any:
    """Run a statement built once (module-level, bound parameters) as SQL compiled once per
    dialect, on `single_statement_connection`: per call, SQLAlchemy neither rebuilds the
    expression nor computes its cache key. `params` are the DBAPI's values (JSON as text);
    constants the statement holds are added. Returns the result."""
    conn = single_statement_connection(session)
    sql, constants, order = _precompiled(statement, conn.dialect)
    return conn.exec_driver_sql(sql, _driver_params(constants | params, order))


def first_row_autocommit(session: Any, statement: Any, params: dict[str, Any], *, apart: bool = False) -> Any:
    """`run_precompiled(...).first()` at its cheapest, for a statement that is a whole transaction
    on its own: on PostgreSQL with no transaction open in the session, it runs straight on a
    pooled DBAPI connection in autocommit, without SQLAlchemy's Connection and Result (a
    measurable share of a one-statement request's CPU). Driver errors come back as SQLAlchemy's
    classes, as from any other statement; a connection that fails is discarded from the pool.
    The first row as a tuple, or None.
    `apart=True` runs it so on PostgreSQL even while the session has a transaction open (on a
    second pooled connection: its effect is committed whatever the session's transaction does);
    elsewhere it then runs in the session's transaction."""
    bind = session.get_bind()
    if (
        (session.in_transaction() and not apart)
        or not isinstance(bind, Engine)
        or bind.dialect.name != "postgresql"
    ):
        return run_precompiled(session, statement, params).first()
    sql, constants, _order = _precompiled(statement, bind.dialect)  # PostgreSQL: named
    dbapi = bind.dialect.loaded_dbapi
    pooled = bind.raw_connection()
    try:
        driver = pooled.driver_connection
        driver.autocommit = True
        try:
            with driver.cursor() as cur:
                cur.execute(sql, constants | params)
                return cur.fetchone() if cur.description else None
        finally:
            driver.autocommit = False
    except dbapi.Error as exc:
        lost = isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError))
        if lost:
            pooled.invalidate()
        # As SQLAlchemy would raise it (DataError, IntegrityError, ...): callers and the API's
        # error handlers know those, not the driver's own classes (a NUL byte is a 400, not a 500).
        # Without the parameters in its text: they may be a citizen's data, and it may be logged.
        raise DBAPIError.instance(
            sql, params, exc, dbapi.Error, hide_parameters=True, connection_invalidated=lost,
            dialect=bind.dialect,
        ) from exc  # fmt: skip
    finally:
        pooled.close()


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


# (table, column, value-expression id) per row → the INSERT(s) built for that shape. The built
# statements hold the expressions, so an id in a key cannot be reused by another object.
_insert_cache: dict[tuple, list[Any]] = {}
_cache_lock = threading.Lock()


class RowUpdate(NamedTuple):
    """One row's new values, keyed by column: written by `insert_rows` after its inserts."""

    table: Any
    key: dict[str, Any]  # the primary key
    values: dict[str, Any]


_column_attrs: dict[Any, list[str]] = {}  # mapper -> its attributes in its table's column order


def load_for_update(
    session: Any, cls: Any, statement: Any, params: dict[str, Any]
) -> tuple[Any, tuple] | None:
    """Read one row for a write path that changes it with `insert_rows(..., update=
    pending_update(obj))`, in the same round trip as its appended rows, instead of through the
    ORM's unit of work: `statement` (a SELECT built once at module level, usually FOR UPDATE)
    selects every column of `cls`'s table in table order, then any others. Returns the row as a
    `cls` object outside the session, as if loaded (its changes are tracked), and the other
    values; None when there is no row. A copy of that row the session already holds is taken out
    of it: it would be stale after the write."""
    rows = read_rows(session, statement, params)
    if not rows:
        return None
    mapper = inspect(cls)
    attrs = _column_attrs.get(mapper)
    if attrs is None:
        attrs = _column_attrs[mapper] = [
            mapper.get_property_by_column(c).key for c in mapper.local_table.columns
        ]
    obj = mapper.class_manager.new_instance()
    # As if loaded: on an instance this fresh (nothing expired, changed or deferred) putting the
    # values in its state's dict is what set_committed_value does per attribute, without that
    # call's work per column (~30 µs for an application's 33); later changes are tracked against them.
    instance_state(obj).dict.update(zip(attrs, rows[0], strict=False))
    key = mapper.identity_key_from_instance(obj)
    held = session.identity_map.get(key)
    if held is not None:
        session.expunge(held)
    return obj, tuple(rows[0][len(attrs) :])


def database_away(exc: BaseException) -> bool:
    """A lost or refused database connection (or one that timed out), as opposed to an error
    about what was asked of it: worth trying again later, not anyone's fault to record."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


def pending_update(obj: Any) -> RowUpdate:
    """The changes made to an object from `load_for_update` since it was read, as a row update;
    afterwards the object counts as saved."""
    state = inspect(obj)
    mapper = state.mapper
    if state.session_id is not None:
        raise ValueError("pending_update: the object is in a session (read it with load_for_update)")
    values: dict[str, Any] = {}
    for attr in list(state.committed_state):
        column = mapper.get_property(attr).columns[0]
        values[column.key] = state.dict.get(attr)
        set_committed_value(obj, attr, state.dict.get(attr))
    key = {c.key: state.dict[mapper.get_property_by_column(c).key] for c in mapper.primary_key}
    return RowUpdate(mapper.local_table, key, values)


def insert_rows(
    session: Any,
    rows: list[tuple[Any, dict[str, Any]]],
    params: dict[str, Any] | None = None,
    *,
    update: RowUpdate | None = None,
) -> None:
    """Insert rows into (possibly different) tables in the caller's transaction, now.

    For append-only rows a write path adds beside its ORM changes (timeline events, outbox rows,
    ledger lines, audit events): the ORM's unit of work costs several times a plain INSERT per
    object. On PostgreSQL the rows go in one statement (the first ones as data-modifying CTEs),
    so in one round trip, run on the driver (`DriverStatement`); elsewhere one INSERT per row.
    Columns left out get their constant Python-side default, or their server default. A value
    may be an SQL expression built once at module level (e.g. the next number of a sequence
    column), whose own bound parameters come in `params`. On PostgreSQL foreign keys are
    checked when the statement ends; elsewhere at each INSERT, so list a referenced row before
    the rows that reference it. `update` (one existing row's new values, see `pending_update`)
    goes in the same statement on PostgreSQL, elsewhere after the inserts; it may reference the
    inserted rows.
    """
    if not rows and update is None:
        return
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    key = (pg, *((table.name, *((k, id(v) if isinstance(v, ClauseElement) else 0) for k, v in values.items()))
                 for table, values in rows))  # fmt: skip
    if update is not None:
        key += (("update", update.table.name, *update.key, "set", *update.values),)
    statements = _insert_cache.get(key)
    if statements is None:
        statements = _build_inserts(rows, pg, update)
        if pg:  # one statement, compiled once (psycopg, see below)
            statements = [DriverStatement.compile(statements[0], conn.dialect)]
        with _cache_lock:
            if len(_insert_cache) > 1000:
                _insert_cache.clear()
            _insert_cache[key] = statements
    flat = dict(params or {})
    for i, (_table, values) in enumerate(rows):
        flat.update({f"r{i}_{k}": v for k, v in values.items() if not isinstance(v, ClauseElement)})
    if update is not None:
        flat.update({f"u_key_{k}": v for k, v in update.key.items()})
        flat.update({f"u_{k}": v for k, v in update.values.items()})
    for statement in statements:
        if isinstance(statement, DriverStatement):
            statement.execute(conn, flat)
        else:
            conn.execute(statement, flat)


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled once for PostgreSQL and run on the driver (psycopg), in the caller's
    transaction, without SQLAlchemy's per-execution work (parameter construction, execution
    context, result objects): for a hot path's statements that work cost more than psycopg's.
    Values and selected columns go through the same type processors SQLAlchemy applies (UTC
    datetimes, JSON), and driver errors come back as SQLAlchemy's (IntegrityError, DataError,
    ...) as they would from `Connection.execute`. `execute` for writes, `rows` for a SELECT."""

    sql: str
    constants: dict[str, Any]
    processors: dict[str, Any]
    column_processors: tuple[Any, ...] = ()  # per selected column, None where there is none

    @classmethod
    def compile(cls, statement: Any, dialect: Any) -> DriverStatement:
        compiled = statement.compile(dialect=dialect)
        processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[compiled.bind_names.get(bind, name)] = processor
        constants = {
            k: processors[k](v) if k in processors else v for k, v in compiled.params.items() if v is not None
        }
        columns: tuple[Any, ...] = ()
        if getattr(statement, "is_select", False):
            found = tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, None)
                for c in statement.selected_columns
            )
            columns = found if any(found) else ()
        return cls(compiled.string, constants, processors, columns)

    def execute(self, conn: Any, params: dict[str, Any]) -> None:
        self._run(conn, params).close()

    def rows(self, conn: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        cursor = self._run(conn, params)
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        if not self.column_processors:
            return fetched
        pairs = list(enumerate(self.column_processors))
        return [tuple(p(row[i]) if p is not None else row[i] for i, p in pairs) for row in fetched]

    def _run(self, conn: Any, params: dict[str, Any]) -> Any:
        try:
            values = dict(self.constants)
            processors = self.processors
            for k, v in params.items():
                processor = processors.get(k)
                values[k] = processor(v) if processor is not None else v
            return conn.connection.driver_connection.execute(self.sql, values)
        except Exception as exc:
            # SQLAlchemy's own handling, as for a statement it ran: driver errors and errors
            # converting a value come back wrapped (IntegrityError, DataError, StatementError),
            # and a lost connection is invalidated together with the rest of the pool.
            conn._handle_dbapi_exception(exc, self.sql, params, None, None)
            raise  # not reached: the handler raises


# id(statement) -> (the statement, its compiled form): the entry holds the statement, so its id
# cannot be reused by another while it is cached.
_driver_statements: dict[int, tuple[Any, DriverStatement]] = {}


def read_rows(session: Any, statement: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a Core SELECT built once at module level, in the session's transaction: on
    PostgreSQL through `DriverStatement` (compiled once), elsewhere through SQLAlchemy. Plain
    tuples in the order of the selected columns."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return [tuple(row) for row in conn.execute(statement, params)]
    entry = _driver_statements.get(id(statement))
    if entry is None or entry[0] is not statement:
        entry = (statement, DriverStatement.compile(statement, conn.dialect))
        with _cache_lock:
            if len(_driver_statements) > 1000:
                _driver_statements.clear()
            _driver_statements[id(statement)] = entry
    return entry[1].rows(conn, params)


def _build_inserts(rows: list[tuple[Any, dict[str, Any]]], pg: bool, update: RowUpdate | None) -> list[Any]:
    inserts: list[Any] = []
    for i, (table, values) in enumerate(rows):
        columns: dict[str, Any] = {
            k: v if isinstance(v, ClauseElement) else bindparam(f"r{i}_{k}", type_=table.c[k].type)
            for k, v in values.items()
        }
        # A CTE's INSERT gets no Python-side defaults (NULL instead): constants are written in,
        # a value computed per row (an id) must be given.
        for column in table.columns:
            if column.key in values or column.default is None:
                continue
            if not column.default.is_scalar:
                raise ValueError(f"insert_rows: give {table.name}.{column.key} a value")
            columns[column.key] = bindparam(
                f"r{i}_{column.key}_default", column.default.arg, type_=column.type
            )
        inserts.append(insert(table).values(columns))
    if update is not None:
        table = update.table
        inserts.append(
            sa_update(table)
            .where(*(table.c[k] == bindparam(f"u_key_{k}", type_=table.c[k].type) for k in update.key))
            .values({k: bindparam(f"u_{k}", type_=table.c[k].type) for k in update.values})
        )
    if not pg or len(inserts) == 1:
        return inserts
    combined = inserts[-1]
    for i, part in enumerate(inserts[:-1]):
        combined = combined.add_cte(part.cte(f"row{i}"))
    return [combined]
