"""Schema, demo data and signing-key commands."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

ROOT = Path(__file__).resolve().parent.parent


def run_migrations(url: str) -> None:
    """Upgrade the database at `url` to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


@click.command("migrate")
@with_appcontext
def migrate_command() -> None:
    """Apply the Alembic migrations to the configured database."""
    run_migrations(current_app.config["DATABASE_URL"])
    click.echo("database is at the newest revision")


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create demo data for the embedded run (idempotent): a signing key, a demo citizen, the catalog."""
    from api.deps import services
    from core.db import db
    from core.signing_keys import ensure_key
    from domain.accounts import service as accounts

    svc = services()
    session = db.session()
    ensure_key(session, svc.encryptor)
    demo_phone = "13800138000"
    account, created = accounts.login_phone(
        session, encryptor=svc.encryptor, hasher=svc.hasher, phone=demo_phone
    )
    session.commit()
    click.echo(
        f"demo citizen {'created' if created else 'exists'}: phone {demo_phone} (SMS code from the simulator)"
    )
    from cli.catalog import SEED_DIR, SEED_FILES, import_files

    if not import_files([SEED_DIR / f for f in SEED_FILES], publish=True, dry_run=False):
        raise SystemExit(1)
    from domain.appointments import demo

    click.echo(f"demo halls: {demo.seed_halls(db.session())} added")
    from domain.oauth.demo import DEMO_CLIENT_ID, seed_demo_client

    made = seed_demo_client(db.session())
    click.echo(f"demo OAuth client {DEMO_CLIENT_ID} {'created' if made else 'exists'}")


@click.group("keys")
def keys() -> None:
    """Token signing keys."""


@keys.command("rotate")
@with_appcontext
def rotate_keys() -> None:
    """Start signing with a new key; the old one verifies until its tokens have expired."""
    from api.deps import services
    from core.db import db
    from core.signing_keys import rotate
    from domain.operators.audit_log import CLI_ACTOR

    cfg = current_app.config
    # Every token type must outlive the rotation: citizens' and operators' (8 h by default),
    # plus the time other processes keep signing with their cached key, plus clock skew.
    grace = max(cfg["ACCESS_TOKEN_TTL"], cfg["ADMIN_TOKEN_TTL"]) + cfg["SIGNING_KEY_CACHE_SECONDS"] + 60
    svc = services()
    new = rotate(
        db.session(), svc.encryptor, verify_grace=grace, actor_type=CLI_ACTOR.type, actor_id=CLI_ACTOR.id
    )
    svc.keyring.invalidate()
    click.echo(f"new signing key {new.kid}; previous keys verify for {grace} s more")


@keys.command("list")
@with_appcontext
def list_keys() -> None:
    """Show signing keys and their state."""
    from sqlalchemy import select

    from core.db import db
    from core.signing_keys import SigningKey

    for key in db.session.scalars(select(SigningKey).order_by(SigningKey.created_at)):
        state = "signing" if key.retired_at is None else f"verify-until {key.verify_until:%Y-%m-%d %H:%M:%S}"
        click.echo(f"{key.kid}\t{key.created_at:%Y-%m-%d %H:%M:%S}\t{state}")


@keys.command("reencrypt-data")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(min=1))
@with_appcontext
def reencrypt_data(batch_size: int) -> None:
    """Rewrite personal data still encrypted under an older DATA_KEYS entry with DATA_KEY_ACTIVE."""
    from api.deps import services
    from core.db import db
    from domain.identity.rekey import rekey
    from domain.operators.audit_log import CLI_ACTOR

    svc = services()
    kid = svc.encryptor.active_kid
    reports: dict[str, dict[str, int]] = {}
    places = rekey(
        db.session(), encryptor=svc.encryptor, storage=svc.applications.storage,
        replays=svc.idempotency, actor=CLI_ACTOR, batch_size=batch_size,
    )  # fmt: skip
    try:
        for place, counts in places:  # each as soon as it is done: a long run shows where it is
            reports[place] = counts
            click.echo(
                f"{place}\texamined {counts['examined']}\trewritten {counts['rewritten']}"
                f"\tleft {counts['left']}"
            )
    except Exception as exc:
        places.close()  # a failure here (the output broke) stops the run, audited where it was
        # The error's type only: its text may quote a value being rewritten.
        click.echo(
            f"stopped: {type(exc).__name__} after {len(reports)} places. What is listed above is done "
            "and kept; re-run the command to finish (what is done is skipped)",
            err=True,
        )
        raise
    rewritten = sum(c["rewritten"] for c in reports.values())
    left = {place: c["left"] for place, c in reports.items() if c["left"]}
    if left:
        where = ", ".join(f"{place} ({n})" for place, n in left.items())
        click.echo(
            f"rewrote {rewritten} ciphertexts; {sum(left.values())} still use another key: {where}. "
            "Keep the old keys; re-run once every process runs with DATA_KEY_ACTIVE="
            f"{kid} (a value under a key no longer in DATA_KEYS cannot be moved)",
            err=True,
        )
        raise SystemExit(1)
    click.echo(
        f"rewrote {rewritten} ciphertexts; every stored ciphertext (database, file storage and the "
        f"responses kept for idempotent replays) now uses key {kid}: the old keys can be removed "
        "from DATA_KEYS."
    )
