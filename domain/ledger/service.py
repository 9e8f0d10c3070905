"""Write and read the data-use ledger (Estonia's Data Tracker idea: who used my data, when, why).

Every use of a citizen's data by someone other than the citizen is written in the same
transaction as the use: a shared-data query for an application, a certificate attached to an
application, a certificate shown at a counter and checked, and (issue: OAuth) every access a
third-party client makes with a token. The citizen reads it at GET /v1/me/data-access.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import ordered_id
from domain.ledger.models import DataAccess


def record(session: Session, **fields: Any) -> None:
    """Add a ledger line to the caller's transaction; `fields` as for `line`."""
    session.add(DataAccess(**line(**fields)))


def line(
    *,
    account_id: str,
    at: datetime,
    accessor_type: str,
    accessor_name: str,
    source: str,
    resource: str,
    resource_name: str,
    purpose: str,
    accessor_id: str | None = None,
    application_id: str | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    """The columns of one ledger line, each cut to its column."""
    return {
        "id": ordered_id(), "account_id": account_id, "at": at, "accessor_type": accessor_type,
        "accessor_id": accessor_id, "accessor_name": accessor_name[:128], "source": source,
        "resource": resource[:200], "resource_name": resource_name[:128], "purpose": purpose[:200],
        "application_id": application_id, "scope": scope,
    }  # fmt: skip


def page(
    session: Session, *, account_id: str, before: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; `before` is the last id of the previous page."""
    stmt = select(DataAccess).where(DataAccess.account_id == account_id)
    if before:
        stmt = stmt.where(DataAccess.id < before)
    rows = list(session.scalars(stmt.order_by(DataAccess.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "accessor": {"type": r.accessor_type, "id": r.accessor_id, "name": r.accessor_name},
            "source": r.source,
            "resource": r.resource,
            "resource_name": r.resource_name,
            "purpose": r.purpose,
            "application_id": r.application_id,
            "scope": r.scope,
        }
        for r in rows
    ]
    return items, (rows[-1].id if more and rows else None)
