"""The catalog revision: bumped in the same transaction as every change citizens can see, it
tells the read models of every process to reload."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import clock
from domain.catalog.models import CatalogRevision


def bump_revision(session: Session) -> None:
    """Tell every read model the catalog changed (row-locked, so concurrent writers serialise)."""
    now = clock.now()
    done = session.execute(
        update(CatalogRevision)
        .where(CatalogRevision.id == 1)
        .values(revision=CatalogRevision.revision + 1, updated_at=now)
    ).rowcount
    if not done:
        session.add(CatalogRevision(id=1, revision=1, updated_at=now))
        session.flush()


def current_revision(session: Session) -> int:
    return session.execute(select(CatalogRevision.revision).where(CatalogRevision.id == 1)).scalar() or 0
