"""Showing a certificate at a counter (亮证) and the counter's check of it.

A presentation token is an ES256 JWT (audience `certificate-presentation`, at most 5 minutes)
naming one `certificate_presentations` row; the row is spent by a conditional update, so a token
verifies once. Verification asks the library for the certificate's state *now*.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import lock_one, ordered_id
from core.tokens import TokenExpired, TokenInvalid
from domain.accounts import open_guard
from domain.accounts.errors import AccountNotFound
from domain.ledger import service as ledger
from domain.shared_data.deps import GovDataDeps
from domain.shared_data.errors import (
    CertificateNotFound,
    CertificateNotValid,
    PresentationExpired,
    PresentationInvalid,
    PresentationUsed,
    PresentationWithdrawn,
    SourceUnavailable,
    VerifiedIdentityRequired,
)
from domain.wallet.holder import holder
from domain.wallet.live import apply_detail, ask, live_locked
from domain.wallet.models import STATES, VALID, Presentation, WalletCertificate
from domain.wallet.service import owned
from domain.wallet.summary import summary, usable

AUDIENCE = "certificate-presentation"


def _state_error(row: WalletCertificate) -> CertificateNotValid:
    zh, en = STATES.get(row.state, (row.state, row.state))
    if row.state == VALID:
        zh, en = "已过有效期", "past its validity"
    return CertificateNotValid(state=zh, state_en=en.lower())


def present(
    session: Session,
    deps: GovDataDeps,
    *,
    account_id: str,
    cert_id: str,
    lang: str = "zh",
    request_id: str | None = None,
) -> dict[str, Any]:
    """A single-use QR token for a counter (亮证); only for a certificate valid right now."""
    row = owned(session, account_id, cert_id)
    who = holder(session, deps, account_id, why="presentation", request_id=request_id)
    row, _detail = live_locked(session, deps, row, who, "presentation")
    now = clock.now()
    if not usable(row, clock.local_date(now)):
        session.commit()  # keep the state just read
        raise _state_error(row)
    ttl = min(int(deps.presentation_ttl), 300)
    pid = ordered_id()
    session.add(
        Presentation(
            id=pid,
            account_id=account_id,
            certificate_id=row.id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    token = deps.tokens.mint(
        audience=AUDIENCE, subject=account_id, ttl=ttl, claims={"jti": pid, "cid": row.id}
    )
    session.commit()
    return {
        "token": token,
        "expires_at": (now + timedelta(seconds=ttl)).isoformat(),
        "ttl": ttl,
        "certificate": summary(row, deps, lang),  # in the caller's language, as the list shows it
    }


def verify(
    session: Session,
    deps: GovDataDeps,
    *,
    token: str,
    verifier_type: str,
    verifier_id: str,
    verifier_name: str,
    request_id: str | None = None,
    lang: str = "zh",
) -> dict[str, Any]:
    """Check a shown token once: whose, which certificate, and its state in the library now.

    The library is asked with no lock held (a slow library holds up no closure); then the
    account, the certificate and the code are locked in that order, the order of the closure
    and of the wallet's sync, and the code is spent. A code whose certificate left the wallet
    meanwhile (the account closed, the certificate dropped) is PresentationWithdrawn, with
    nothing written but the audit of the officer's read of the holder's identity."""
    try:
        claims = deps.tokens.verify(token, audience=AUDIENCE)
    except TokenExpired as exc:
        raise PresentationExpired() from exc
    except TokenInvalid as exc:
        raise PresentationInvalid() from exc
    pid, cert_id = str(claims.get("jti")), str(claims.get("cid"))
    shown = session.get(Presentation, pid)
    row = session.get(WalletCertificate, cert_id) if shown is not None else None
    if shown is None or row is None:  # a genuine code names rows erased since
        session.rollback()
        raise PresentationWithdrawn()
    if shown.used_at is not None:
        session.rollback()
        raise PresentationUsed()
    try:
        # Read for the officer who scanned the code: the audit names them, not the citizen.
        who = holder(
            session, deps, row.account_id, why="presentation-check", request_id=request_id,
            actor_type="operator", actor_id=verifier_id,
        )  # fmt: skip
    except VerifiedIdentityRequired:  # erased by a closure since the rows were read
        session.rollback()
        raise PresentationWithdrawn() from None
    # The name and ID number are decrypted and go to the library now: the read is on record
    # whatever becomes of the scan (another officer spends the code first, the account closes).
    # Nothing is locked yet, and nothing else is pending in this transaction.
    session.commit()
    detail, gone = None, False
    try:
        detail = ask(deps, row, who, "verification")
        checked_live = True
    except SourceUnavailable:
        checked_live = False  # answer from the last known state, and say so
    except CertificateNotFound:  # withdrawn from the library, or no longer this person's
        checked_live, gone = True, True  # not valid: the scan is spent and recorded all the same
    row = _locked_for_scan(session, shown.account_id, cert_id)
    if detail is not None:
        apply_detail(row, detail)
    now = clock.now()
    valid = not gone and usable(row, clock.local_date(now))
    spent = session.execute(
        update(Presentation)
        .where(Presentation.id == pid, Presentation.certificate_id == cert_id, Presentation.used_at.is_(None))
        .values(
            used_at=now, verifier_type=verifier_type, verifier_id=verifier_id,
            result="valid" if valid else "not_valid",
        )
    ).rowcount  # fmt: skip
    if spent != 1:
        session.rollback()
        if session.scalar(select(Presentation.id).where(Presentation.id == pid)) is None:
            raise PresentationWithdrawn()
        raise PresentationUsed()
    ledger.record(
        session,
        account_id=row.account_id,
        at=now,
        accessor_type=verifier_type,
        accessor_id=verifier_id,
        accessor_name=verifier_name,
        source="wallet",
        resource=f"certificate:{row.identifier}",
        resource_name=row.type_name,
        purpose="亮证核验",
    )
    audit.record(
        session,
        actor_type=verifier_type,
        actor_id=verifier_id,
        action="certificate.verify",
        target_type="certificate",
        target_id=row.id,
        request_id=request_id,
        details={"valid": valid},
    )
    session.commit()
    body = summary(row, deps, lang)
    body.pop("id")
    return {"valid": valid, "checked_live": checked_live, "checked_at": now.isoformat(), "certificate": body}


def _locked_for_scan(session: Session, account_id: str, cert_id: str) -> WalletCertificate:
    """The scanned certificate as it is now, locked after its account (PresentationWithdrawn,
    the transaction rolled back, once the account closed or the certificate left the wallet)."""
    try:
        open_guard.lock_for_change(session, account_id)
    except AccountNotFound:
        session.rollback()
        raise PresentationWithdrawn() from None
    row = lock_one(session, WalletCertificate, WalletCertificate.id == cert_id)
    if row is None or row.account_id != account_id:
        session.rollback()
        raise PresentationWithdrawn()
    return row
