"""Items and their versions: lookups, the version an application pins, admin reads.

Every change to an item's content is a new version; a published one is never changed again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.catalog.errors import ItemNotFound, ItemSuspended, VersionNotFound
from domain.catalog.models import STATUS_SUSPENDED, VERSION_DRAFT, ServiceItem, ServiceItemVersion


def content_hash(doc: dict[str, Any]) -> str:
    """The hash of an item version's or a bundle's document (an unchanged import is spotted by it)."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def latest_versions(session: Session, codes: list[str]) -> dict[str, tuple[ServiceItem, ServiceItemVersion]]:
    """The items of `codes` that exist, each with its newest version."""
    out: dict[str, tuple[ServiceItem, ServiceItemVersion]] = {}
    for i in range(0, len(codes), 500):
        rows = session.execute(
            select(ServiceItem, ServiceItemVersion)
            .join(ServiceItemVersion, ServiceItemVersion.item_id == ServiceItem.id)
            .where(ServiceItem.code.in_(codes[i : i + 500]))
            .where(ServiceItemVersion.version == ServiceItem.latest_version)
        ).all()
        out.update({item.code: (item, version) for item, version in rows})
    return out


def find_item(session: Session, code: str, *, lock: bool = True) -> ServiceItem:
    """The item `code` (row-locked unless `lock` is false), or ItemNotFound."""
    query = select(ServiceItem).where(ServiceItem.code == code)
    item = session.scalar(query.with_for_update() if lock else query)
    if item is None:
        raise ItemNotFound()
    return item


# --- versions, for applications -------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """The item version an application started on; it keeps reading this version."""

    code: str
    version: int


def pin_current(session: Session, code: str) -> Pin:
    """Pin the published version of an item for a new application (refused when suspended)."""
    item = session.scalar(select(ServiceItem).where(ServiceItem.code == code))
    if item is None or item.published_version is None:
        raise ItemNotFound()
    if item.status == STATUS_SUSPENDED:
        raise ItemSuspended()
    return Pin(code=code, version=item.published_version)


def version_document(session: Session, code: str, version: int) -> dict[str, Any]:
    """A version that was published (current or retired); drafts are never shown to citizens."""
    row = session.execute(
        select(ServiceItemVersion.document, ServiceItemVersion.state)
        .join(ServiceItem, ServiceItem.id == ServiceItemVersion.item_id)
        .where(ServiceItem.code == code, ServiceItemVersion.version == version)
    ).first()
    if row is None or row.state == VERSION_DRAFT:
        raise VersionNotFound()
    return row.document


# --- admin reads ----------------------------------------------------------------------------


def item_versions(session: Session, code: str) -> list[ServiceItemVersion]:
    item = find_item(session, code, lock=False)
    return list(
        session.scalars(
            select(ServiceItemVersion)
            .where(ServiceItemVersion.item_id == item.id)
            .order_by(ServiceItemVersion.version.desc())
        )
    )


def admin_item(session: Session, code: str) -> tuple[ServiceItem, ServiceItemVersion]:
    item = find_item(session, code, lock=False)
    latest = session.scalar(
        select(ServiceItemVersion).where(
            ServiceItemVersion.item_id == item.id, ServiceItemVersion.version == item.latest_version
        )
    )
    assert latest is not None
    return item, latest


def list_admin_items(
    session: Session, *, status: str | None = None
) -> list[tuple[ServiceItem, dict[str, Any]]]:
    """Every item with its newest version's document (for lists, CSV and burden)."""
    query = (
        select(ServiceItem, ServiceItemVersion.document)
        .join(ServiceItemVersion, ServiceItemVersion.item_id == ServiceItem.id)
        .where(ServiceItemVersion.version == ServiceItem.latest_version)
        .order_by(ServiceItem.code)
    )
    if status:
        query = query.where(ServiceItem.status == status)
    return [(item, doc) for item, doc in session.execute(query).all()]
