"""The wallet's rows: what the certificate library lists for the holder, stored so the list
still shows when the library is down (marked stale), and so a presentation has a stable id.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.masking import mask_number
from domain.accounts import open_guard
from domain.shared_data.deps import GovDataDeps
from domain.shared_data.errors import SourceUnavailable
from domain.wallet.holder import Holder
from domain.wallet.models import WalletCertificate
from integrations.govdata.client import GovDataError

CERT_PURPOSE = "certificate"


def parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def sync(
    session: Session, deps: GovDataDeps, who: Holder, *, purpose: str
) -> tuple[list[WalletCertificate], bool]:
    """Read the holder's certificates from the library into the wallet; (rows, stale).
    AccountNotFound when the account closed while the library answered (nothing stored)."""
    try:
        listed = deps.ecert.list(id_number=who.id_number, name=who.name, purpose=purpose)
    except GovDataError as exc:
        if not exc.retryable:
            raise SourceUnavailable() from exc
        return sorted(_held(session, who.account_id).values(), key=_shown_order), True
    # Locked after the library's answer, not before: a closure committed meanwhile refuses this
    # (its erased certificates are not stored again); one arriving now waits for this commit.
    open_guard.lock_for_change(session, who.account_id)
    rows = _held(session, who.account_id)
    try:
        with session.begin_nested():
            _store(session, deps, who, rows, listed)
    except IntegrityError:
        # Another request of this account (the mini-program and the app opening the wallet at
        # once, a double tap) stored the same certificates meanwhile: update its rows instead.
        rows = _held(session, who.account_id)
        _store(session, deps, who, rows, listed)
    return sorted(rows.values(), key=_shown_order), False


def _held(session: Session, account_id: str) -> dict[str, WalletCertificate]:
    return {
        r.identifier: r
        for r in session.scalars(
            select(WalletCertificate)
            .where(WalletCertificate.account_id == account_id)
            .execution_options(populate_existing=True)
        )
    }


def _store(
    session: Session, deps: GovDataDeps, who: Holder, rows: dict[str, WalletCertificate], listed: list[Any]
) -> None:
    """Make the wallet's rows (`rows`, updated in place) what the library listed; flushed."""
    now = clock.now()
    seen = set()
    for c in listed:
        seen.add(c["identifier"])
        row = rows.get(c["identifier"])
        if row is None:
            row = WalletCertificate(account_id=who.account_id, identifier=c["identifier"])
            session.add(row)
            rows[c["identifier"]] = row
        row.type_code, row.type_name, row.issuer = c["type_code"], c["type_name"], c["issuer"]
        row.holder_name_enc = deps.encryptor.encrypt(c["holder_name"], purpose=CERT_PURPOSE)
        row.number_enc = deps.encryptor.encrypt(c["number"], purpose=CERT_PURPOSE)
        row.number_masked = mask_number(c["number"], id_bearing=c["type_code"] in ID_BEARING_TYPES)
        row.own = c["holder_id_number"] == who.id_number
        row.state, row.issued_on, row.valid_until = (
            c["state"],
            parse_date(c["issued_on"]),
            parse_date(c["valid_until"]),
        )
        row.synced_at = now
    for identifier, row in list(rows.items()):
        if identifier not in seen:  # no longer in the library for this person
            session.delete(row)
            del rows[identifier]
    session.flush()


# Certificate types whose number is the holder's resident ID number (as migration 7f3a9c2e5d14).
ID_BEARING_TYPES = frozenset({"11100000000019713D001", "11100000000019713D003"})
# The cards a citizen reaches for most come first: ID card, household register, then by type.
_FIRST = {"11100000000019713D001": 0, "11100000000019713D002": 1}


def _shown_order(row: WalletCertificate) -> tuple[bool, int, str, str]:
    # Two certificates of one type (an old licence and its renewal) by identifier: the same order
    # whether the library answered or the last states are shown (rows read back in any order).
    return (not row.own, _FIRST.get(row.type_code, 2), row.type_code, row.identifier)
