"""The wallet: the citizen's certificates from the library, shown masked, presented by QR, verified.

The library is the authority on a certificate's state; the wallet keeps the last answer
(`wallet_certificates`, domain/wallet/sync.py) so the list still shows when the library is down
(marked stale), and so a presentation (domain/wallet/presentations.py) has a stable id to point
at. Here: the list, one certificate shown or its file, and whether attached certificates may
still satisfy a material.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from domain.shared_data.deps import GovDataDeps
from domain.shared_data.errors import (
    CertificateNotFound,
    SourceUnavailable,
    VerifiedIdentityRequired,
)
from domain.wallet.holder import holder
from domain.wallet.live import live, live_locked
from domain.wallet.models import WalletCertificate
from domain.wallet.summary import summary, usable
from domain.wallet.sync import sync
from integrations.govdata.client import GovDataError


def list_certificates(
    session: Session, deps: GovDataDeps, *, account_id: str, lang: str = "zh", request_id: str | None = None
) -> dict[str, Any]:
    who = holder(session, deps, account_id, why="wallet", request_id=request_id)
    rows, stale = sync(session, deps, who, purpose="wallet")
    session.commit()
    return {"certificates": [summary(r, deps, lang) for r in rows], "stale": stale}


def owned(session: Session, account_id: str, cert_id: str) -> WalletCertificate:
    row = session.get(WalletCertificate, cert_id)
    if row is None or row.account_id != account_id:
        raise CertificateNotFound()
    return row


def show(
    session: Session,
    deps: GovDataDeps,
    *,
    account_id: str,
    cert_id: str,
    reveal: bool,
    lang: str = "zh",
    request_id: str | None = None,
) -> dict[str, Any]:
    """One certificate, masked; with `reveal` the full data from the library (audited)."""
    row = owned(session, account_id, cert_id)
    who = holder(session, deps, account_id, why="wallet", request_id=request_id)
    row, detail = live_locked(session, deps, row, who, "wallet")
    body = summary(row, deps, lang)
    if reveal:
        audit.record(
            session,
            actor_type="citizen",
            actor_id=account_id,
            action="certificate.reveal",
            target_type="certificate",
            target_id=row.id,
            request_id=request_id,
            details={"type_code": row.type_code},
        )
        body |= {
            "holder_name": detail["holder_name"],
            "number": detail["number"],
            "data": detail.get("data") or {},
        }
    session.commit()
    return body


def certificate_file(
    session: Session,
    deps: GovDataDeps,
    *,
    account_id: str,
    cert_id: str,
    fmt: str,
    request_id: str | None = None,
) -> tuple[bytes, str]:
    row = owned(session, account_id, cert_id)
    who = holder(session, deps, account_id, why="wallet", request_id=request_id)
    try:
        f = deps.ecert.file(identifier=row.identifier, id_number=who.id_number, fmt=fmt)
    except GovDataError as exc:
        raise SourceUnavailable() from exc
    audit.record(
        session,
        actor_type="citizen",
        actor_id=account_id,
        action="certificate.file",
        target_type="certificate",
        target_id=row.id,
        request_id=request_id,
        details={"format": fmt},
    )
    session.commit()
    return f.content, f.media_type


def current_states(
    session: Session, deps: GovDataDeps, *, account_id: str, identifiers: list[str]
) -> dict[str, bool]:
    """Whether each certificate may still satisfy a material (asked live; the last state when down).

    A certificate attached on another account that was merged into this one has no wallet row
    here (wallet rows are read afresh, not moved): the wallet is synced from the library first,
    so a valid card is not refused as "no longer valid"."""
    rows = {
        r.identifier: r
        for r in session.scalars(
            select(WalletCertificate).where(
                WalletCertificate.account_id == account_id, WalletCertificate.identifier.in_(identifiers)
            )
        )
    }
    if not identifiers:
        return {}
    try:
        who = holder(session, deps, account_id, why="submission-check", actor_type="system")
    except VerifiedIdentityRequired:
        return dict.fromkeys(identifiers, False)
    if any(identifier not in rows for identifier in identifiers):
        try:
            synced, _stale = sync(session, deps, who, purpose="application")
        except SourceUnavailable:
            synced = []
        rows |= {r.identifier: r for r in synced if r.identifier in identifiers}
    today = clock.local_date()
    out = {}
    for identifier in identifiers:
        row = rows.get(identifier)
        if row is None:
            out[identifier] = False
            continue
        try:
            live(deps, row, who, "application")
        except CertificateNotFound:
            out[identifier] = False
            continue
        except SourceUnavailable:
            pass
        out[identifier] = usable(row, today)
    return out
