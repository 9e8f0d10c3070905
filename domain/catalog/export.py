"""The whole catalog in the import format (docs/catalog-format.md), for backup, review and
moving a catalog between environments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.catalog.models import (
    REFERENCE_MODELS,
    STATUS_PUBLISHED,
    Bundle,
    ServiceItem,
    ServiceItemVersion,
)


def export_catalog(session: Session, *, published_only: bool = False) -> dict[str, Any]:
    """The whole catalog in the import format (newest versions, or the published ones)."""
    reference: dict[str, list[dict[str, Any]]] = {}
    for name, model in REFERENCE_MODELS.items():
        columns = [c.name for c in model.__table__.columns]
        reference[name] = [
            {c: getattr(row, c) for c in columns}
            for row in session.scalars(select(model).order_by(model.code))
        ]
    version_column = ServiceItem.published_version if published_only else ServiceItem.latest_version
    query = (
        select(ServiceItemVersion.document)
        .join(ServiceItem, ServiceItem.id == ServiceItemVersion.item_id)
        .where(ServiceItemVersion.version == version_column)
        .order_by(ServiceItem.code)
    )
    if published_only:  # what citizens see: not suspended items (they keep their published version)
        query = query.where(ServiceItem.status == STATUS_PUBLISHED)
    items = list(session.scalars(query).all())
    bundle_query = select(Bundle).order_by(Bundle.code)
    if published_only:
        bundle_query = bundle_query.where(Bundle.status == STATUS_PUBLISHED)
    bundles = [
        (b.published_document if published_only else b.document) for b in session.scalars(bundle_query)
    ]
    if published_only:
        # A bundle citizens cannot start (an item suspended) is not offered to them, and an
        # export naming items it does not hold would not import into an empty catalog.
        exported = {doc["code"] for doc in items}
        bundles = [b for b in bundles if b and set(b["items"]) <= exported]
    return {"reference": reference, "items": items, "bundles": [b for b in bundles if b]}
