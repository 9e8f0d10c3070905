"""One migration head, and the migrations build exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from factory import load_models
from tests.conftest import migrate

ROOT = Path(__file__).resolve().parents[2]


def test_single_head():
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    heads = ScriptDirectory.from_config(cfg).get_heads()
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
