"""The catalog's write locks: one import at a time, and the rows of the items a bundle names.

An import locks items and then bundles; a bundle's publish or resume its bundle and then its
items. Both take the import lock first, so the two cannot deadlock.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import take_write_lock
from domain.catalog.models import CatalogRevision, ServiceItem

# The advisory lock's key: a fixed 63-bit number derived from its name.
_IMPORT_LOCK = int.from_bytes(hashlib.sha256(b"yiwang:catalog-import").digest()[:8], "big") >> 1


def one_import_at_a_time(session: Session) -> None:
    """Imports are judged and written one after another (PostgreSQL: a transaction-scoped
    advisory lock; SQLite: its one write lock). Two editors importing the same new item at once
    both judged it new, and the second failed on the item's unique code with a 500; now the
    second is judged after the first has committed (unchanged, or a new version)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_IMPORT_LOCK)))
    else:
        take_write_lock(session, CatalogRevision.__table__, CatalogRevision.id == 1)


def lock_items(session: Session, codes: list[str]) -> None:
    """Lock the rows of the items `codes` until the transaction ends, in code order (two bundles
    sharing items lock them in the same order), and read them afresh. A suspend locks its item
    row first (set_item_status), so a bundle's publish and the suspend of one of its items run one
    after the other: the publish waits for the suspend and sees the item suspended, or the suspend
    waits for the publish (PostgreSQL: SELECT ... FOR UPDATE; SQLite: its one write lock)."""
    where = ServiceItem.code.in_(sorted(set(codes)))
    take_write_lock(session, ServiceItem.__table__, where)
    session.scalars(
        select(ServiceItem)
        .where(where)
        .order_by(ServiceItem.code)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
