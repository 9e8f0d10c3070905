"""A certificate's state asked of the library now (the authority), and written onto its
wallet row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core import clock
from domain.accounts import open_guard
from domain.shared_data.deps import GovDataDeps
from domain.shared_data.errors import (
    CertificateNotFound,
    SourceUnavailable,
)
from domain.wallet.holder import Holder
from domain.wallet.models import WalletCertificate
from domain.wallet.sync import parse_date
from integrations.govdata.client import GovDataError


def ask(deps: GovDataDeps, row: WalletCertificate, who: Holder, purpose: str) -> dict[str, Any]:
    """The certificate's detail from the library now (nothing written)."""
    try:
        return deps.ecert.detail(identifier=row.identifier, id_number=who.id_number, purpose=purpose)
    except GovDataError as exc:
        if exc.code in ("E404", "E4034"):  # gone from the library, or no longer this person's
            raise CertificateNotFound() from exc
        raise SourceUnavailable() from exc


def apply_detail(row: WalletCertificate, detail: dict[str, Any]) -> None:
    row.state, row.valid_until, row.synced_at = (
        detail["state"],
        parse_date(detail.get("valid_until")),
        clock.now(),
    )


def live(deps: GovDataDeps, row: WalletCertificate, who: Holder, purpose: str) -> dict[str, Any]:
    detail = ask(deps, row, who, purpose)
    apply_detail(row, detail)
    return detail


def live_locked(
    session: Session, deps: GovDataDeps, row: WalletCertificate, who: Holder, purpose: str
) -> tuple[WalletCertificate, dict[str, Any]]:
    """As `live`, for the citizen's own request: after the library's answer the account is
    locked (AccountNotFound once closed) and the row read again (CertificateNotFound when a
    closure or another sync deleted it meanwhile); (the row as it is now, the detail)."""
    detail = ask(deps, row, who, purpose)
    open_guard.lock_for_change(session, who.account_id)
    fresh = session.get(WalletCertificate, row.id, populate_existing=True)
    if fresh is None or fresh.account_id != who.account_id:
        raise CertificateNotFound()
    apply_detail(fresh, detail)
    return fresh, detail
