"""Alembic environment: the URL comes from the yiwang config (or -x url=...)."""

from __future__ import annotations

from alembic import context

from config import load_config
from core.db import make_engine
from factory import load_models

target_metadata = load_models()


def _url() -> str:
    override = context.get_x_argument(as_dictionary=True).get("url")
    if override:
        return override
    configured = context.config.attributes.get("url")
    if configured:
        return configured
    cfg = load_config()
    cfg.INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    return cfg.DATABASE_URL


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
