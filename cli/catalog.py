"""`flask catalog ...`: import the catalog from files (the seed, or a province's export)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext

SEED_DIR = Path(__file__).resolve().parents[1] / "seed" / "catalog"
SEED_FILES = ("reference.json", "items.json", "bundles.json")


def merged_documents(paths: list[Path]) -> dict:
    """Several import documents as one, so references across files validate together."""
    out: dict = {
        "reference": {"departments": [], "categories": [], "ecert_types": []},
        "items": [],
        "bundles": [],
    }
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for name, rows in (doc.get("reference") or {}).items():
            out["reference"].setdefault(name, []).extend(rows)
        out["items"].extend(doc.get("items") or [])
        out["bundles"].extend(doc.get("bundles") or [])
    return out


def import_files(paths: list[Path], *, publish: bool, dry_run: bool) -> bool:
    from core.db import db
    from domain.catalog.importing import import_catalog
    from domain.operators.audit_log import CLI_ACTOR

    document = merged_documents(paths)
    document["publish"] = publish
    report = import_catalog(db.session(), CLI_ACTOR, document, dry_run=dry_run)
    for problem in report.problems:
        click.echo(f"  {problem.subject or '-'} {problem.path}: {problem.code}: {problem.detail}", err=True)
    changed = {k: v for k, v in report.items.items() if v != "unchanged"}
    verb = "checked" if dry_run else "imported"
    click.echo(
        f"catalog {verb}: {len(report.items)} items ({len(changed)} changed), "
        f"{len(report.bundles)} bundles, {len(report.problems)} problems"
    )
    return report.ok


@click.group("catalog")
def catalog_group() -> None:
    """Service catalog."""


@catalog_group.command("import")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--publish/--draft", default=False, help="publish every imported item and bundle")
@click.option("--dry-run", is_flag=True, help="only validate and report")
@with_appcontext
def import_command(files: tuple[Path, ...], publish: bool, dry_run: bool) -> None:
    """Import one or more JSON documents (docs/catalog-format.md) as one all-or-nothing import."""
    if not files:
        raise click.UsageError("give at least one file")
    if not import_files(list(files), publish=publish, dry_run=dry_run):
        raise SystemExit(1)


@catalog_group.command("seed")
@with_appcontext
def seed_catalog_command() -> None:
    """Load and publish the demo catalog from seed/catalog/ (unchanged items stay as they are)."""
    if not import_files([SEED_DIR / f for f in SEED_FILES], publish=True, dry_run=False):
        raise SystemExit(1)
