"""The "data sharing" part of an application as the phone shows it: what can be fetched, the
consent text, and how each fetched item stands (retrieved, no record, awaiting approval, ...)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from core.db_statements import single_statement_connection
from domain.applications import forms, states
from domain.applications.forms import FormSpec
from domain.applications.models import Application
from domain.catalog.models import EcertType
from domain.catalog.sources import SHARED_DATASETS
from domain.shared_data import models as m
from domain.shared_data.plan import SharingPlan, consent_text, plan_for


def type_names(session: Session, codes: tuple[str, ...]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(
        session.execute(select(EcertType.code, EcertType.name).where(EcertType.code.in_(codes))).all()
    )


@dataclass(frozen=True)
class Offer:
    plan: SharingPlan
    text: str
    version: str
    names: dict[str, str]  # certificate type code -> name


# Per spec, like the form spec itself (domain/applications/forms.py): a GET of an application
# must not recompute the plan and re-read type names every time. Keyed as the spec is (pinned
# items and the bundle's name: two bundles of the same items each name their own) with the
# departments it names, and dropped when the specs are (a catalog change: a department renamed).
_offers: dict[tuple[Any, ...], Offer] = {}
_offers_revision: list[int | None] = [None]
_lock = threading.Lock()


def offer_for(session: Session, spec: FormSpec) -> Offer:
    revision = forms.specs_revision()
    if revision != _offers_revision[0]:
        with _lock:
            _offers.clear()
            _offers_revision[0] = revision
    key = (spec.items, spec.name, spec.departments)
    found = _offers.get(key)
    if found is not None:
        return found
    plan = plan_for(spec.prefill, spec.materials)
    names = type_names(session, plan.certificate_types)
    text, version = consent_text(spec.name, list(spec.departments), plan, names)
    offer = Offer(plan, text, version, names)
    with _lock:
        if len(_offers) > 10_000:
            _offers.clear()
        _offers[key] = offer
    return offer


def text_for(session: Session, spec: FormSpec) -> tuple[SharingPlan, str, str]:
    offer = offer_for(session, spec)
    return offer.plan, offer.text, offer.version


# Built once; only the columns the view shows.
_GRANT = select(m.SharingGrant.granted_at, m.SharingGrant.revoked_at).where(
    m.SharingGrant.application_id == bindparam("app_id")
)
_RECORDS = select(
    m.SharedRecord.dataset, m.SharedRecord.status, m.SharedRecord.expected_by, m.SharedRecord.reason
).where(m.SharedRecord.application_id == bindparam("app_id"))


def _read(session: Session, statement: Any, params: dict[str, Any]) -> Any:
    """Inside a transaction, in it (pending rows flushed first); after a write path committed
    (the view is rendered last), in autocommit: no BEGIN and ROLLBACK round trips."""
    if session.in_transaction():
        return session.execute(statement, params)
    return single_statement_connection(session).execute(statement, params)


class GrantTimes(NamedTuple):
    """When the application's data-sharing grant was given and revoked (as _GRANT reads them)."""

    granted_at: datetime
    revoked_at: datetime | None


NOT_READ: Any = object()  # `grant=`: the caller has not read the grant, read it here


def sharing(
    session: Session, app: Application, spec: FormSpec, *, lang: str = "zh", grant: Any = NOT_READ
) -> dict[str, Any] | None:
    """`grant`: the GrantTimes (or None: there is none) when the caller has just read them."""
    offer = offer_for(session, spec)
    plan, text, version = offer.plan, offer.text, offer.version
    if plan.empty:
        return None
    en = lang == "en"
    params = {"app_id": app.id}
    if grant is NOT_READ:
        grant = _read(session, _GRANT, params).first()
    rows = {r.dataset: r for r in _read(session, _RECORDS, params)} if grant is not None else {}
    datasets = []
    for d in plan.datasets:
        row = rows.get(d)
        label = m.STATUS_LABELS.get(row.status) if row is not None else None
        datasets.append(
            {
                "id": d,
                "name": SHARED_DATASETS[d][1 if en else 0],
                "status": row.status if row else None,
                "status_label": (label[1] if en else label[0]) if label else None,
                "expected_by": row.expected_by.isoformat() if row is not None and row.expected_by else None,
                "reason": row.reason if row is not None and row.status == m.DENIED else None,
            }
        )
    names = offer.names
    body: dict[str, Any] = {
        "authorised": grant is not None and grant.revoked_at is None,
        "granted_at": grant.granted_at.isoformat() if grant is not None else None,
        "datasets": datasets,
        "certificate_types": [{"code": c, "name": names.get(c, c)} for c in plan.certificate_types],
    }
    if app.status == states.DRAFT:
        body |= {"text": text, "text_version": version}
    return body
