"""Group insert: every writer returns only once its row is committed; concurrent rows share
commits; a bad row fails only its own writer."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core import clock
from core.db import db
from core.group_insert import GroupInsert
from domain.ledger.models import DataAccess
from tests.conftest import make_citizen


def _line(account_id: str, **over) -> dict:
    row = {
        "id": str(uuid.uuid4()),
        "account_id": account_id,
        "at": clock.now(),
        "accessor_type": "client",
        "accessor_id": "c",
        "accessor_name": "测试",
        "source": "api",
        "resource": "GET /x",
        "resource_name": "查看办件",
        "purpose": "p",
        "application_id": None,
        "scope": "applications.read",
    }
    return row | over


def _count(row_id: str) -> int:
    with db.autocommit() as conn:  # another connection: sees only what was committed
        return conn.execute(select(func.count()).where(DataAccess.id == row_id)).scalar_one()


def test_concurrent_writers_each_return_after_their_row_is_committed_and_share_commits(app):
    account = make_citizen(app)["account_id"]
    statements = []

    def connect():
        statements.append(1)
        return db.autocommit()

    writer = GroupInsert(DataAccess.__table__, connect)
    seen, errors = [], []
    start = threading.Barrier(24)

    def work() -> None:
        row = _line(account)
        start.wait()
        try:
            writer.write(row)
            seen.append(_count(row["id"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.remove()

    threads = [threading.Thread(target=work) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and seen == [1] * 24
    assert len(statements) < 24  # some commits carried several rows


def test_a_bad_row_fails_only_its_own_writer(app):
    account = make_citizen(app)["account_id"]
    writer = GroupInsert(DataAccess.__table__, db.autocommit)
    good, bad = _line(account), _line("no-such-account")
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def work(name: str, row: dict) -> None:
        start.wait()
        try:
            writer.write(row)
            results[name] = "ok"
        except Exception as exc:
            results[name] = exc
        finally:
            db.remove()

    threads = [
        threading.Thread(target=work, args=("good", good)),
        threading.Thread(target=work, args=("bad", bad)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["good"] == "ok" and _count(good["id"]) == 1
    assert isinstance(results["bad"], Exception) and _count(bad["id"]) == 0


def test_a_lone_writer_is_written_at_once(app):
    account = make_citizen(app)["account_id"]
    row = _line(account)
    GroupInsert(DataAccess.__table__, db.autocommit).write(row)
    assert _count(row["id"]) == 1
    with pytest.raises(IntegrityError):
        GroupInsert(DataAccess.__table__, db.autocommit).write(_line("missing"))
