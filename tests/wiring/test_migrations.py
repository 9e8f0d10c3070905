"""One migration head, and the migrations build exactly the schema the models declare."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, create_engine, insert, text
from sqlalchemy.engine import Engine

from config import load_config
from core.crypto import Encryptor, parse_keys
from factory import load_models
from tests.conftest import alembic_config, migrate


def test_single_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def _diff(url: str) -> list:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, load_models())
    finally:
        engine.dispose()


def test_migrated_schema_matches_models(database_url):
    # database_url was built by `alembic upgrade head` in the session fixture.
    assert _diff(database_url) == []


def test_migrations_from_empty_sqlite_match_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(url)
    assert _diff(url) == []


def _sqlite_at(tmp_path: Path, revision: str) -> tuple[str, Engine]:
    """A new SQLite database migrated up to `revision`, and an engine on it."""
    url = f"sqlite:///{tmp_path / 'at-revision.db'}"
    migrate(url, revision)
    return url, create_engine(url)


def _row(conn: Any, table: str, **given: Any) -> None:
    """Insert a row giving every NOT NULL column without a default a placeholder of its type."""
    columns = MetaData()
    found = Table(table, columns, autoload_with=conn)
    values: dict[str, Any] = {}
    for column in found.columns:
        if column.name in given or column.nullable or column.server_default is not None:
            continue
        python = column.type.python_type
        values[column.name] = {
            str: "x",
            int: 0,
            bool: False,
            datetime: datetime(2026, 1, 1),
            dict: {},
            list: [],
        }.get(python, "x")
    conn.execute(insert(found).values(values | given))


def test_the_complaint_attachment_index_is_filled_from_existing_complaints(tmp_path):
    url, engine = _sqlite_at(tmp_path, "c3d8e9f0a1b2")
    with engine.begin() as conn:
        _row(conn, "accounts", id="acc")
        _row(conn, "application_files", id="kept", account_id="acc", storage_key="k1")
        _row(conn, "complaints", id="c1", account_id="acc", tracking_no="TS1", attachments=["kept", "gone"])
    migrate(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT complaint_id, file_id FROM complaint_attachments")).all()
    assert [tuple(r) for r in rows] == [("c1", "kept")]  # a file already swept is not indexed
    engine.dispose()


def test_a_downgrade_refuses_to_forget_grants_still_open_at_the_exchange(tmp_path):
    url, engine = _sqlite_at(tmp_path, "head")
    with engine.begin() as conn:
        _row(conn, "accounts", id="acc")
        _row(conn, "sharing_grants", id="open", account_id="acc", application_id=None, revoked_at=None)
    with pytest.raises(RuntimeError, match="still open at the exchange"):
        command.downgrade(alembic_config(url), "b7c1e2d3f4a5")
    with engine.begin() as conn:
        conn.execute(text("UPDATE sharing_grants SET revoked_at = '2026-01-02 00:00:00'"))
    command.downgrade(alembic_config(url), "b7c1e2d3f4a5")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sharing_grants")).scalar() == 0
    engine.dispose()


def test_existing_evaluation_reasons_are_encrypted_and_a_downgrade_restores_them(tmp_path):
    url, engine = _sqlite_at(tmp_path, "d4e5f6a7b8c9")
    with engine.begin() as conn:
        _row(conn, "accounts", id="acc")
        _row(conn, "applications", id="app", account_id="acc")
        _row(conn, "evaluations", id="ev", application_id="app", account_id="acc", reason="窗口让我跑了三次")
        _row(conn, "rectification_tasks", id="t", evaluation_id="ev", account_id="acc",
             due_on=date(2026, 1, 9), appeal_reason="电话13800138000")  # fmt: skip
    migrate(url, "e5f6a7b8c9d0")
    with engine.connect() as conn:
        sealed = conn.execute(text("SELECT reason_enc FROM evaluations")).scalar()
        appeal = conn.execute(text("SELECT appeal_reason_enc FROM rectification_tasks")).scalar()
    assert sealed.startswith("v1.") and "窗口" not in sealed and "13800138000" not in appeal
    cfg = load_config()  # the keys the migration used: the app's configured data keys
    encryptor = Encryptor(parse_keys(cfg.DATA_KEYS), cfg.DATA_KEY_ACTIVE)
    assert encryptor.decrypt(sealed, purpose="evaluation-reason") == "窗口让我跑了三次"
    command.downgrade(alembic_config(url), "d4e5f6a7b8c9")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reason FROM evaluations")).scalar() == "窗口让我跑了三次"
        assert (
            conn.execute(text("SELECT appeal_reason FROM rectification_tasks")).scalar() == "电话13800138000"
        )
    engine.dispose()


def test_bookings_moved_before_moved_to_existed_are_found_by_the_old_rule(tmp_path):
    url, engine = _sqlite_at(tmp_path, "f6a7b8c9d0e1")
    closed, later = datetime(2026, 1, 5, 2, 0, 0, 123456), datetime(2026, 1, 5, 3, 0, 0, 654321)
    with engine.begin() as conn:
        for account in ("me", "other"):
            _row(conn, "accounts", id=account)
        _row(conn, "halls", id="hall")
        _row(conn, "appointment_slots", id="slot", hall_id="hall", day=date(2026, 1, 9))

        def booking(id_: str, status: str, created: datetime, updated: datetime, account: str = "me") -> None:
            _row(conn, "appointments", id=id_, account_id=account, slot_id="slot", hall_id="hall",
                 service_code="item", day=date(2026, 1, 9), status=status, created_at=created,
                 updated_at=updated)  # fmt: skip

        booking("moved", "cancelled", datetime(2026, 1, 1), closed)  # a reschedule closed it ...
        booking("successor", "booked", closed, closed)  # ... and made this at the same instant
        booking("cancelled", "cancelled", datetime(2026, 1, 2), later)  # the citizen's own cancel
        booking("stranger", "booked", later, later, account="other")  # same instant, someone else
    migrate(url, "4115f800b96c")
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, moved_to FROM appointments")).all())
    assert rows == {"moved": "successor", "successor": None, "cancelled": None, "stranger": None}
    command.downgrade(alembic_config(url), "f6a7b8c9d0e1")
    with engine.connect() as conn:
        columns = [r[1] for r in conn.execute(text("PRAGMA table_info(appointments)"))]
        count = conn.execute(text("SELECT count(*) FROM appointments")).scalar()
    assert "moved_to" not in columns and count == 4
    engine.dispose()


def test_values_reused_from_an_earlier_application_get_its_mask(tmp_path):
    url, engine = _sqlite_at(tmp_path, "4115f800b96c")
    masked_id = {"source": "shared.marriage.spouse_id_number", "masked": "440***********0240"}
    with engine.begin() as conn:
        _row(conn, "accounts", id="acc")
        _row(conn, "applications", id="earlier", account_id="acc",
             provenance={"spouse.id_number": masked_id, "spouse.name": {"source": "user"}})  # fmt: skip
        _row(conn, "applications", id="later", account_id="acc", provenance={
            "spouse.id_number": {"source": "application", "record_id": "earlier"},
            "spouse.name": {"source": "application", "record_id": "earlier"},
            "phone": {"source": "application", "record_id": "gone"},
        })  # fmt: skip
    migrate(url, "7a3c1e5d9b20")
    with engine.connect() as conn:
        later = json.loads(
            conn.execute(text("SELECT provenance FROM applications WHERE id = 'later'")).scalar()
        )
    assert later == {
        "spouse.id_number": {"source": "application", "record_id": "earlier", "masked": "440***********0240"},
        "spouse.name": {"source": "application", "record_id": "earlier"},  # typed: shown as typed
        "phone": {"source": "application", "record_id": "gone"},
    }
    engine.dispose()


def test_complaints_and_rectification_tasks_learn_their_department_from_the_pinned_item(tmp_path):
    url, engine = _sqlite_at(tmp_path, "7a3c1e5d9b20")
    with engine.begin() as conn:
        _row(conn, "accounts", id="acc")
        _row(conn, "service_items", id="item", code="ITEM1")
        for version, department in ((1, "GA"), (2, "RS")):  # the case pinned version 1
            _row(conn, "service_item_versions", id=f"v{version}", item_id="item", version=version,
                 document={"department": department})  # fmt: skip
        _row(conn, "applications", id="app", account_id="acc", items=[{"code": "ITEM1", "version": 1}])
        _row(conn, "complaints", id="c1", account_id="acc", tracking_no="TS1", application_id="app")
        _row(conn, "complaints", id="c2", account_id="acc", tracking_no="TS2", application_id=None)
        _row(conn, "evaluations", id="ev", application_id="app", account_id="acc")
        _row(conn, "rectification_tasks", id="t", evaluation_id="ev", account_id="acc",
             due_on=date(2026, 1, 9))  # fmt: skip
        _row(conn, "operators", id="op", username="desk", roles=["hall_officer"])
    migrate(url)
    with engine.connect() as conn:
        complaints = dict(conn.execute(text("SELECT id, department_code FROM complaints")).all())
        task = conn.execute(text("SELECT department_code FROM rectification_tasks")).scalar()
        scope = conn.execute(text("SELECT hall_ids, department_codes FROM operators")).one()
    assert complaints == {"c1": "GA", "c2": None} and task == "GA"
    assert tuple(scope) == (None, None)  # existing operators stay unrestricted
    command.downgrade(alembic_config(url), "7a3c1e5d9b20")
    with engine.connect() as conn:
        columns = [r[1] for r in conn.execute(text("PRAGMA table_info(complaints)"))]
    assert "department_code" not in columns
    engine.dispose()


def test_operators_whose_password_an_admin_chose_must_change_it_and_a_downgrade_drops_the_flag(tmp_path):
    url, engine = _sqlite_at(tmp_path, "b3d5f7a9c1e2")
    at = datetime(2026, 12, 1, 9, 0, 0, 123456)
    later = datetime(2026, 12, 2, 9, 0, 0, 654321)
    with engine.begin() as conn:
        for name in ("boot", "made", "reset", "changed", "own"):
            _row(conn, "operators", id=name, username=name, roles=["ops"])

        def event(action: str, target: str, when: datetime, actor_type: str = "operator", **kw: Any) -> None:
            _row(conn, "audit_events", id=f"{action}-{target}-{when.day}", action=action, target_id=target,
                 at=when, actor_type=actor_type, outcome=kw.get("outcome", "ok"))  # fmt: skip

        event("operator.create", "boot", at, actor_type="system")  # the CLI's first admin
        event("operator.create", "made", at)  # by an admin through the API, never changed
        event("operator.create", "reset", at, actor_type="system")
        event("operator.credentials_reset", "reset", at)  # reset, never changed since
        event("operator.password_change", "reset", later, outcome="failed")
        event("operator.create", "changed", at)
        event("operator.credentials_reset", "changed", at)
        event("operator.password_change", "changed", later)  # reset, then their own
        event("operator.create", "own", at)
        event("operator.password_change", "own", at)  # changed at the same instant: their own
    migrate(url, "953dcd90bb4f")
    with engine.connect() as conn:
        flags = {k: bool(v) for k, v in conn.execute(text("SELECT id, must_change_password FROM operators"))}
    assert flags == {"boot": False, "made": True, "reset": True, "changed": False, "own": False}
    with engine.connect() as conn:  # each flag the migration set is in the audit trail
        audited = conn.execute(
            text(
                "SELECT target_id, actor_type FROM audit_events"
                " WHERE action = 'operator.password_change_required'"
            )
        ).all()
    assert sorted(audited) == [("made", "system"), ("reset", "system")]
    with engine.begin() as conn:  # a new row without the column named gets the default
        _row(conn, "operators", id="later", username="later", roles=["ops"])
        assert not conn.execute(
            text("SELECT must_change_password FROM operators WHERE id = 'later'")
        ).scalar()
    command.downgrade(alembic_config(url), "b3d5f7a9c1e2")
    with engine.connect() as conn:
        columns = [r[1] for r in conn.execute(text("PRAGMA table_info(operators)"))]
        count = conn.execute(text("SELECT count(*) FROM operators")).scalar()
    assert "must_change_password" not in columns and count == 6
    migrate(url)  # and up again
    engine.dispose()


def test_names_widen_to_the_catalogs_with_ratings_tasks_and_certificates_kept(tmp_path):
    url, engine = _sqlite_at(tmp_path, "452bc7ec256c")
    with engine.begin() as conn:
        _row(conn, "accounts", id="acc")
        _row(conn, "applications", id="app", account_id="acc", items=[{"code": "ITEM1", "version": 1}])
        _row(
            conn, "evaluations", id="ev", application_id="app", account_id="acc", department="市政务服务中心"
        )
        _row(conn, "rectification_tasks", id="t", evaluation_id="ev", account_id="acc",
             department="市政务服务中心", due_on=date(2026, 1, 9))  # fmt: skip
        _row(conn, "wallet_certificates", id="w", account_id="acc", identifier="c1", type_name="居民户口簿")
    migrate(url)
    assert _diff(url) == []
    long_name = "行政审批服务局" * 14 + "政务"  # 100 characters, as the catalog takes
    with engine.begin() as conn:
        assert conn.execute(text("SELECT department FROM rectification_tasks")).scalar() == "市政务服务中心"
        conn.execute(text("UPDATE evaluations SET department = :d"), {"d": long_name})
        assert conn.execute(text("SELECT type_name FROM wallet_certificates")).scalar() == "居民户口簿"
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    with pytest.raises(RuntimeError, match="longer than 64"):
        command.downgrade(alembic_config(url), "452bc7ec256c")
    with engine.begin() as conn:
        conn.execute(text("UPDATE evaluations SET department = '市政务服务中心'"))
    command.downgrade(alembic_config(url), "452bc7ec256c")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rectification_tasks")).scalar() == 1
    engine.dispose()


def test_stored_wallet_masks_of_id_numbers_take_the_identitys_rule(tmp_path):
    url, engine = _sqlite_at(tmp_path, "3b7d1e5a9c42")
    masks = {
        "card": ("11100000000019713D001", "4401**********4413"),
        "licence": ("11100000000019713D003", "4401**********441X"),
        "licence-new": ("11100000000019713D003", "440***********4413"),  # synced already
        "business": ("11100000000014311C001", "9144**********XX1Q"),  # not an ID number
    }
    with engine.begin() as conn:
        _row(conn, "accounts", id="acc")
        for key, (type_code, masked) in masks.items():
            _row(conn, "wallet_certificates", id=key, account_id="acc", identifier=key,
                 type_code=type_code, number_masked=masked)  # fmt: skip
    migrate(url, "7f3a9c2e5d14")
    with engine.connect() as conn:
        after = dict(conn.execute(text("SELECT id, number_masked FROM wallet_certificates")).all())
    assert after == {
        "card": "440***********4413",
        "licence": "440***********441X",
        "licence-new": "440***********4413",
        "business": "9144**********XX1Q",
    }
    engine.dispose()
