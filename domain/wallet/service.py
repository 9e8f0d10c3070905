"""The wallet: the citizen's certificates from the library, shown masked, presented by QR, verified.

The library is the authority on a certificate's state; the wallet keeps the last answer
(`wallet_certificates`) so the list still shows when the library is down (marked stale), and so
a presentation has a stable id to point at. A presentation token is an ES256 JWT (audience
`certificate-presentation`, at most 5 minutes) naming one `certificate_presentations` row; the
row is spent by a conditional update, so a token verifies once. Verification asks the library
for the certificate's state *now*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import lock_one, ordered_id
from core.masking import mask_name, mask_number
from core.tokens import TokenExpired, TokenInvalid
from domain.accounts import open_guard
from domain.accounts.errors import AccountNotFound
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE
from domain.identity.models import VerifiedIdentity
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
from domain.wallet.models import STATES, VALID, Presentation, WalletCertificate
from integrations.govdata.client import GovDataError

AUDIENCE = "certificate-presentation"
CERT_PURPOSE = "certificate"


@dataclass(frozen=True)
class Holder:
    account_id: str
    name: str
    id_number: str


def holder(
    session: Session,
    deps: GovDataDeps,
    account_id: str,
    *,
    why: str,
    request_id: str | None = None,
    actor_type: str = "citizen",
    actor_id: str | None = None,
) -> Holder:
    """The verified person behind an account (decrypted, audited); 403 when not verified. The
    audit names who reads (`actor_type`, `actor_id`: the citizen themselves unless given)."""
    row = session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.account_id == account_id))
    if row is None:
        raise VerifiedIdentityRequired()
    audit.record(
        session,
        actor_type=actor_type,
        actor_id=actor_id or account_id,
        action="pii.read",
        target_type="account",
        target_id=account_id,
        request_id=request_id,
        details={"purpose": why},
    )
    return Holder(
        account_id,
        deps.encryptor.decrypt(row.name_enc, purpose=NAME_PURPOSE),
        deps.encryptor.decrypt(row.id_number_enc, purpose=ID_PURPOSE),
    )


def usable(row: WalletCertificate, today: date) -> bool:
    """Only a valid certificate within its validity may satisfy a material or be shown."""
    return row.state == VALID and (row.valid_until is None or row.valid_until >= today)


def _d(value: str | None) -> date | None:
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
        row.state, row.issued_on, row.valid_until = c["state"], _d(c["issued_on"]), _d(c["valid_until"])
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


def summary(row: WalletCertificate, deps: GovDataDeps, lang: str = "zh") -> dict[str, Any]:
    zh, en = STATES.get(row.state, (row.state, row.state))
    return {
        "id": row.id,
        "identifier": row.identifier,
        "type_code": row.type_code,
        "type_name": row.type_name,
        "issuer": row.issuer,
        "holder_name": mask_name(deps.encryptor.decrypt(row.holder_name_enc, purpose=CERT_PURPOSE)),
        "number": row.number_masked,
        "own": row.own,
        "state": row.state,
        "state_name": en if lang == "en" else zh,
        "usable": usable(row, clock.local_date()),
        "issued_on": row.issued_on.isoformat() if row.issued_on else None,
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "synced_at": row.synced_at.isoformat(),
    }


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


def _ask(deps: GovDataDeps, row: WalletCertificate, who: Holder, purpose: str) -> dict[str, Any]:
    """The certificate's detail from the library now (nothing written)."""
    try:
        return deps.ecert.detail(identifier=row.identifier, id_number=who.id_number, purpose=purpose)
    except GovDataError as exc:
        if exc.code in ("E404", "E4034"):  # gone from the library, or no longer this person's
            raise CertificateNotFound() from exc
        raise SourceUnavailable() from exc


def _apply(row: WalletCertificate, detail: dict[str, Any]) -> None:
    row.state, row.valid_until, row.synced_at = detail["state"], _d(detail.get("valid_until")), clock.now()


def _live(deps: GovDataDeps, row: WalletCertificate, who: Holder, purpose: str) -> dict[str, Any]:
    detail = _ask(deps, row, who, purpose)
    _apply(row, detail)
    return detail


def _live_locked(
    session: Session, deps: GovDataDeps, row: WalletCertificate, who: Holder, purpose: str
) -> tuple[WalletCertificate, dict[str, Any]]:
    """As `_live`, for the citizen's own request: after the library's answer the account is
    locked (AccountNotFound once closed) and the row read again (CertificateNotFound when a
    closure or another sync deleted it meanwhile); (the row as it is now, the detail)."""
    detail = _ask(deps, row, who, purpose)
    open_guard.lock_for_change(session, who.account_id)
    fresh = session.get(WalletCertificate, row.id, populate_existing=True)
    if fresh is None or fresh.account_id != who.account_id:
        raise CertificateNotFound()
    _apply(fresh, detail)
    return fresh, detail


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
    row, detail = _live_locked(session, deps, row, who, "wallet")
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
    row, _detail = _live_locked(session, deps, row, who, "presentation")
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
    nothing written."""
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
    detail, gone = None, False
    try:
        detail = _ask(deps, row, who, "verification")
        checked_live = True
    except SourceUnavailable:
        checked_live = False  # answer from the last known state, and say so
    except CertificateNotFound:  # withdrawn from the library, or no longer this person's
        checked_live, gone = True, True  # not valid: the scan is spent and recorded all the same
    row = _locked_for_scan(session, shown.account_id, cert_id)
    if detail is not None:
        _apply(row, detail)
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
            _live(deps, row, who, "application")
        except CertificateNotFound:
            out[identifier] = False
            continue
        except SourceUnavailable:
            pass
        out[identifier] = usable(row, today)
    return out
