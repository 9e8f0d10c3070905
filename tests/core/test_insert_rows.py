"""core.db_statements.insert_rows: rows of several tables written together, with the values given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from core.audit import AuditEvent
from core.db import new_id, ordered_id
from core.db_statements import insert_rows, load_for_update, pending_update, read_rows
from domain.accounts.models import Account
from domain.identity.models import ConsentRecord
from domain.ledger.models import DataAccess

AUDIT = AuditEvent.__table__
# Built once, as callers build theirs: the number of audit events of an actor, plus one.
NEXT_FOR_ACTOR = (
    select(func.count() + 1).select_from(AuditEvent).where(AuditEvent.actor_id == bindparam("for_actor"))
).scalar_subquery()


def _audit(actor: str, **extra: Any) -> tuple[Any, dict[str, Any]]:
    return AUDIT, {
        "id": new_id(), "at": datetime(2026, 12, 1, 8, 30, tzinfo=UTC), "actor_type": "citizen",
        "actor_id": actor, "action": "test.insert", "target_type": None, "target_id": None,
        "ip": None, "request_id": None, "details": {"n": 1, "名": "值"}, **extra,
    }  # fmt: skip


def _consent(account_id: str, consent_id: str) -> tuple[Any, dict[str, Any]]:
    return ConsentRecord.__table__, {
        "id": consent_id, "account_id": account_id, "purpose": "application_share", "text_version": "v1",
        "channel": "app", "given_at": datetime(2026, 12, 1, 8, 30, tzinfo=UTC), "ip": None,
        "request_id": None,
    }  # fmt: skip


def _ledger(account_id: str) -> tuple[Any, dict[str, Any]]:
    return DataAccess.__table__, {
        "id": ordered_id(), "account_id": account_id, "at": datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
        "accessor_type": "department", "accessor_id": None, "accessor_name": "承办部门",
        "source": "application", "resource": "application:X", "resource_name": "申请表单", "purpose": "办理",
        "application_id": None, "scope": None,
    }  # fmt: skip


def test_rows_of_several_tables_land_with_their_values(db_session: Any, citizen: dict) -> None:
    account_id, actor = citizen["account_id"], new_id()
    for _ in range(2):  # the second call reuses the statement built by the first
        rows = [_consent(account_id, new_id()), _ledger(account_id), _audit(actor)]
        insert_rows(db_session, rows)
    db_session.commit()

    consents = db_session.scalars(select(ConsentRecord).where(ConsentRecord.account_id == account_id)).all()
    assert len(consents) == 2
    assert consents[0].given_at == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert db_session.scalar(select(func.count()).where(DataAccess.account_id == account_id)) == 2
    events = db_session.scalars(select(AuditEvent).where(AuditEvent.actor_id == actor)).all()
    assert [e.details for e in events] == [{"n": 1, "名": "值"}] * 2
    # `outcome` was left out: its Python-side default is written, not NULL.
    assert [e.outcome for e in events] == ["ok", "ok"]


def test_a_value_may_be_an_expression_with_its_own_parameters(db_session: Any) -> None:
    actor = new_id()
    for _ in range(3):
        insert_rows(db_session, [_audit(actor, target_id=NEXT_FOR_ACTOR)], {"for_actor": actor})
    db_session.commit()
    numbers = db_session.scalars(select(AuditEvent.target_id).where(AuditEvent.actor_id == actor)).all()
    assert sorted(numbers) == ["1", "2", "3"]


def test_a_column_whose_default_is_computed_per_row_must_be_given(db_session: Any) -> None:
    table, values = _audit(new_id())
    del values["id"]
    with pytest.raises(ValueError, match="audit_events.id"):
        insert_rows(db_session, [(table, values)])


def test_a_failing_row_writes_none_of_them(db_session: Any, citizen: dict) -> None:
    actor = new_id()
    insert_rows(db_session, [_audit(actor)])
    db_session.commit()
    rows = [_consent(citizen["account_id"], new_id()), _audit(actor, id=new_id()), _ledger("no-such-account")]
    with pytest.raises(IntegrityError):
        insert_rows(db_session, rows)
        db_session.commit()  # SQLite checks the foreign key here at the latest
    db_session.rollback()
    assert db_session.scalar(select(func.count()).where(AuditEvent.actor_id == actor)) == 1
    assert (
        db_session.scalar(select(func.count()).where(ConsentRecord.account_id == citizen["account_id"])) == 0
    )


def _account_row(account_id: str) -> tuple[Any, dict[str, Any]]:
    at = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    return Account.__table__, {"id": account_id, "created_at": at, "updated_at": at, "created_via": "app"}


_ACCOUNT = (
    select(*Account.__table__.columns, func.upper(Account.created_via))
    .where(Account.id == bindparam("account_id"))
    .with_for_update()
)


def _detached_account(db_session: Any, account_id: str) -> Account:
    found = load_for_update(db_session, Account, _ACCOUNT, {"account_id": account_id})
    assert found is not None
    account, extra = found
    assert extra == (account.created_via.upper(),)  # the columns after the table's
    return account


def test_an_objects_changes_go_with_the_rows_and_may_reference_them(db_session: Any, citizen: dict) -> None:
    actor, merged_into = new_id(), new_id()
    account = _detached_account(db_session, citizen["account_id"])
    account.identity_level = "L3"
    account.merged_into_id = merged_into  # a row inserted by the same call
    insert_rows(db_session, [_account_row(merged_into), _audit(actor)], update=pending_update(account))
    db_session.commit()

    db_session.expire_all()
    stored = db_session.get(Account, citizen["account_id"])
    assert (stored.identity_level, stored.merged_into_id) == ("L3", merged_into)
    assert db_session.scalar(select(func.count()).where(AuditEvent.actor_id == actor)) == 1
    # Written: the object has nothing left to write, and no other column was touched.
    assert pending_update(account).values == {}
    assert stored.created_via == account.created_via


def test_a_failing_update_writes_none_of_the_rows(db_session: Any, citizen: dict) -> None:
    actor = new_id()
    account = _detached_account(db_session, citizen["account_id"])
    account.merged_into_id = "no-such-account"
    with pytest.raises(IntegrityError):
        insert_rows(db_session, [_audit(actor)], update=pending_update(account))
        db_session.commit()  # SQLite checks the foreign key here at the latest
    db_session.rollback()
    assert db_session.scalar(select(func.count()).where(AuditEvent.actor_id == actor)) == 0
    assert db_session.get(Account, citizen["account_id"]).merged_into_id is None


def test_an_object_still_in_the_session_is_refused(db_session: Any, citizen: dict) -> None:
    account = db_session.get(Account, citizen["account_id"])
    account.identity_level = "L3"
    with pytest.raises(ValueError, match="load_for_update"):
        pending_update(account)


def test_a_copy_the_session_holds_is_taken_out_and_a_missing_row_is_none(
    db_session: Any, citizen: dict
) -> None:
    held = db_session.get(Account, citizen["account_id"])
    account = _detached_account(db_session, citizen["account_id"])
    assert account is not held and held not in db_session
    account.identity_level = "L3"
    insert_rows(db_session, [], update=pending_update(account))
    db_session.commit()
    assert db_session.get(Account, citizen["account_id"]).identity_level == "L3"  # not the stale copy
    assert load_for_update(db_session, Account, _ACCOUNT, {"account_id": new_id()}) is None


def test_the_combined_statement_is_converted_once_on_postgresql(db_session: Any, citizen: dict) -> None:
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("psycopg's placeholder conversion: PostgreSQL only")
    from psycopg import _queries

    def write() -> None:
        rows = [_consent(citizen["account_id"], new_id()), _ledger(citizen["account_id"])]
        insert_rows(db_session, rows + [_audit(new_id()) for _ in range(4)])

    write()  # > 50 parameters, as a submission's rows have
    before = _queries._query2pg.cache_info().hits
    write()
    db_session.commit()
    assert _queries._query2pg.cache_info().hits > before


def test_a_value_the_database_refuses_is_sqlalchemys_error_and_writes_nothing(db_session: Any) -> None:
    # The API turns SQLAlchemy's DataError into 400 request.invalid_value; on PostgreSQL the rows
    # go through the driver directly, so its error must come back in the same form.
    from sqlalchemy.exc import DataError

    actor = new_id()
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite stores NUL in text")
    with pytest.raises(DataError):
        insert_rows(db_session, [_audit(actor), _audit(actor, request_id="a\x00b")])
    db_session.rollback()
    assert db_session.scalar(select(func.count()).where(AuditEvent.actor_id == actor)) == 0


_READ = select(AuditEvent.id, AuditEvent.at, AuditEvent.details, AuditEvent.outcome).where(
    AuditEvent.actor_id == bindparam("actor")
)


def test_read_rows_gives_what_sqlalchemy_gives(db_session: Any) -> None:
    # On PostgreSQL read_rows runs on the driver: the same values, types and time zones.
    actor = new_id()
    insert_rows(db_session, [_audit(actor), _audit(actor, details={"嵌套": {"n": [1, 2]}})])
    db_session.commit()
    ours = sorted(read_rows(db_session, _READ, {"actor": actor}))
    theirs = sorted(tuple(r) for r in db_session.execute(_READ, {"actor": actor}))
    assert ours == theirs and len(ours) == 2
    assert all(
        row[1] == datetime(2026, 12, 1, 8, 30, tzinfo=UTC) and row[1].utcoffset() is not None for row in ours
    )
    assert {"嵌套": {"n": [1, 2]}} in [row[2] for row in ours]
    assert read_rows(db_session, _READ, {"actor": new_id()}) == []


def test_a_value_that_cannot_be_converted_is_a_statement_error_and_writes_nothing(db_session: Any) -> None:
    # As through SQLAlchemy (which the API answers with 400 request.invalid_value), also when
    # the rows go through the driver: a naive time for a UTC column is refused before sending.
    from sqlalchemy.exc import StatementError

    actor = new_id()
    with pytest.raises(StatementError, match="naive datetime"):
        insert_rows(db_session, [_audit(actor), _audit(actor, at=datetime(2026, 12, 1, 8, 30))])
    db_session.rollback()
    assert db_session.scalar(select(func.count()).where(AuditEvent.actor_id == actor)) == 0


def test_a_driver_error_in_an_autocommit_statement_comes_back_as_sqlalchemys(db_session: Any) -> None:
    """The API answers SQLAlchemy's DataError as 400; the driver's own class would be a 500."""
    from sqlalchemy import text
    from sqlalchemy.exc import DataError

    from core.db_statements import first_row_autocommit

    statement = text("SELECT CAST(:value AS text)")
    assert first_row_autocommit(db_session, statement, {"value": "ok"}) == ("ok",)
    if db_session.get_bind().dialect.name != "postgresql":
        return  # SQLite stores NUL
    with pytest.raises(DataError) as refused:
        first_row_autocommit(db_session, statement, {"value": "secret\x00value"})
    assert "secret" not in str(refused.value)  # parameters may be a citizen's data, and get logged
    assert first_row_autocommit(db_session, statement, {"value": "still ok"}) == ("still ok",)


def test_a_statement_aborted_by_a_lock_conflict_keeps_its_pooled_connection(
    db_session: Any, app: Any, monkeypatch: Any
) -> None:
    # A lock wait refused (NOWAIT: as a deadlock or lock timeout would end it) is a conflict with
    # another transaction, not a broken connection: it is classed as such and the connection goes
    # back to the pool, not discarded with every statement it had prepared.
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool.base import _ConnectionFairy

    from core.db import db, transaction_conflict
    from core.db_statements import first_row_autocommit

    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("FOR UPDATE NOWAIT: PostgreSQL only (SQLite has one writer and no row locks)")
    actor = new_id()
    insert_rows(db_session, [_audit(actor)])
    db_session.commit()
    discarded: list[Any] = []
    invalidate = _ConnectionFairy.invalidate
    monkeypatch.setattr(
        _ConnectionFairy, "invalidate", lambda self, *a, **k: (discarded.append(1), invalidate(self, *a, **k))
    )
    holder = db.engine.connect()
    holder.execute(text("SELECT id FROM audit_events WHERE actor_id = :a FOR UPDATE"), {"a": actor})
    try:
        statement = text("SELECT id FROM audit_events WHERE actor_id = :a FOR UPDATE NOWAIT")
        with pytest.raises(OperationalError) as refused:
            first_row_autocommit(db_session, statement, {"a": actor})
        assert transaction_conflict(refused.value) == "lock_not_available"
        assert discarded == []
    finally:
        holder.rollback()
        holder.close()
    assert first_row_autocommit(db_session, text("SELECT 1"), {}) == (1,)
