"""`flask applications ...`: housekeeping the sweeper also runs on its own schedule."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("applications")
def applications_group() -> None:
    """Applications: expired drafts, orphaned uploads."""


@applications_group.command("housekeeping")
@with_appcontext
def housekeeping_command() -> None:
    """Purge drafts past their expiry and remove uploads no application references."""
    from api.deps import services
    from core.db import db
    from domain.applications import drafts, materials

    session = db.session()
    purged = 0
    while batch := drafts.purge_expired_drafts(session):
        purged += batch
    swept = materials.sweep_orphans(session, services().applications)
    click.echo(
        f"drafts purged: {purged}; orphan files: {swept['files']}; orphan blobs: {swept['blobs']};"
        f" partial writes: {swept['partial_writes']}"
    )
