"""`constraint_of` names the constraint an integrity error broke, on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from core.db import constraint_of, db, new_id
from tests.conftest import make_citizen


def _failure(statement: Any) -> IntegrityError:
    session = db.session()
    with pytest.raises(IntegrityError) as info:
        with session.begin_nested():
            session.execute(statement)
    session.rollback()
    return info.value


def _notification(account_id: str, key: str) -> dict:
    from core import clock

    return {"id": new_id(), "account_id": account_id, "dedupe_key": key, "event_type": "case_accepted",
            "title": "受理", "body": "已受理", "params": {}, "created_at": clock.now()}  # fmt: skip


def test_unique_constraint_primary_key_and_others(app: Any) -> None:
    from sqlalchemy import insert

    from notifications.models import Notification

    person = make_citizen(app)
    row = _notification(person["account_id"], "k")
    session = db.session()
    session.execute(insert(Notification).values(row))
    session.commit()
    repeat = _failure(insert(Notification).values(row | {"id": new_id()}))
    assert constraint_of(repeat) == "uq_notifications_dedupe"
    same_id = _failure(insert(Notification).values(row | {"dedupe_key": "other"}))
    assert constraint_of(same_id) == "pk_notifications"
    unknown_account = _failure(insert(Notification).values(row | {"id": new_id(), "account_id": new_id()}))
    # PostgreSQL names the foreign key; SQLite names none. Never the unique constraint.
    assert constraint_of(unknown_account) in (None, "fk_notifications_account_id_accounts")
    assert constraint_of(ValueError("UNIQUE constraint failed: no_such_table.x")) is None
    # SQLite names a unique index on expressions by the index's own name.
    expression_index = ValueError("UNIQUE constraint failed: index 'uq_by_lower_name'")
    assert constraint_of(expression_index) == "uq_by_lower_name"
