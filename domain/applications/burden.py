"""Measured burden: how much the government filled in, and how many uploads it spared, per item.

Counted at each (re)submission (submission.submit): fields prefilled vs typed, materials satisfied
without an upload (reuse, e-certificate, shared data) vs uploaded. This makes the reform's
"materials reduced by 60%" a measurement rather than a claim.

A bundle (一件事) is its own row: its counts cover the whole combined form, which cannot be
split honestly between its items, and its applications are not applications for its first
item alone.

An operator tied to departments reads only the applications their departments handle (one of
whose pinned items is theirs): an item's row when the item is theirs, a bundle's row counting
only the bundle's applications with an item of theirs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, null, select
from sqlalchemy.orm import Session

from domain.applications import states
from domain.applications.models import Application
from domain.operators.scope import handled_by


def per_item(
    session: Session,
    *,
    service_code: str | None = None,
    bundle_code: str | None = None,
    departments: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per item applied for alone and one per bundle; filter by either code.
    `departments` (an operator's scope; None: every department) counts only the applications
    one of whose items those departments handle, as pinned.

    A bundle is grouped by its code alone: a republished bundle may start with another item."""
    item_code = case((Application.bundle_code.is_(None), Application.service_code), else_=null())
    stmt = (
        select(
            item_code,
            Application.bundle_code,
            func.max(Application.service_name),
            func.count(),
            func.sum(Application.fields_prefilled),
            func.sum(Application.fields_typed),
            func.sum(Application.materials_without_upload),
            func.sum(Application.materials_uploaded),
        )
        # Withdrawn cases are not counted: a citizen who withdrew and applied again would count
        # twice for one service (the second application carries what the first measured).
        .where(
            Application.status.notin_((states.DRAFT, states.WITHDRAWN)), Application.submission_version > 0
        )
        .group_by(item_code, Application.bundle_code)
        .order_by(item_code, Application.bundle_code)
    )
    if service_code:
        stmt = stmt.where(Application.service_code == service_code, Application.bundle_code.is_(None))
    if bundle_code:
        stmt = stmt.where(Application.bundle_code == bundle_code)
    if departments is not None:
        stmt = stmt.where(handled_by(Application.items, departments))
    out = []
    for code, bundle, name, count, prefilled, typed, spared, uploaded in session.execute(stmt):
        prefilled, typed, spared, uploaded = (int(v or 0) for v in (prefilled, typed, spared, uploaded))
        fields_total, materials_total = prefilled + typed, spared + uploaded
        out.append(
            {
                "kind": "bundle" if bundle else "item",
                "service_code": None if bundle else code,
                "bundle_code": bundle,
                "service_name": name,
                "applications": int(count),
                "fields_prefilled": prefilled,
                "fields_typed": typed,
                "prefilled_share": round(prefilled / fields_total, 4) if fields_total else None,
                "materials_without_upload": spared,
                "materials_uploaded": uploaded,
                "materials_reduced_share": round(spared / materials_total, 4) if materials_total else None,
            }
        )
    return out
