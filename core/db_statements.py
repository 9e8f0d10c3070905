"""Statements run on the driver: hot write paths read and write with SQL compiled once, on
psycopg (or sqlite3) directly, keeping SQLAlchemy's types and error classes but not its
per-execution work (docs/applications.md, "What a submission costs")."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    bindparam,
    insert,
    inspect,
)
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql.elements import ClauseElement

from core.db import CONFLICT_SQLSTATES


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
        # A conflict with another transaction (a deadlock, a lock timeout) leaves the connection
        # sound: only one that failed is taken out of the pool.
        conflict = getattr(exc, "sqlstate", None) in CONFLICT_SQLSTATES
        lost = isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError)) and not conflict
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
