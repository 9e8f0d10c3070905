"""Validating a person, and binding a proved identity to an account (one ID number, one account)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import LookupHasher
from domain.accounts.models import Account
from domain.auth.sessions import revoke_all
from domain.identity import documents, merge
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE, IdentityDeps
from domain.identity.errors import BoundToOtherAccount, DifferentPerson, IdentityInvalid
from domain.identity.levels import higher
from domain.identity.models import FAILED, IN_PERSON, PASSED, IdentityVerification, VerifiedIdentity
from domain.identity.reasons import REASON_BOUND_ELSEWHERE, REASON_DIFFERENT
from integrations.realname.base import Person


@dataclass(frozen=True)
class Proof:
    """What a passed check proved, and what it may do to accounts."""

    person: Person
    lookup: str  # the blind index of the ID number
    level: str  # L2 or L3
    method: str
    live: bool  # a face or in-person check: sets the time of the last live check
    may_merge: bool  # a live face check may fold this account into the identity's holder
    # When the live check happened at the latest, if before the binding: a face check counts
    # from when it was started (the face was done after that, and its result may be collected
    # hours later), so an old face never passes for a fresh one at a step-up.
    live_at: datetime | None = None


def live_time(proof: Proof, now: datetime, before: datetime | None) -> datetime:
    """The account's live-check time after `proof` (live): never earlier than it was."""
    at = min(proof.live_at or now, now)
    return max(at, before) if before is not None else at


def id_lookup(hasher: LookupHasher, id_number: str) -> str:
    """The blind index of an ID number."""
    return hasher.hash(id_number, purpose=ID_PURPOSE)


def person_from(name: str, id_number: str) -> Person:
    """Validate and normalise, or raise IdentityInvalid naming each bad field."""
    problems: dict[str, list[str]] = {}
    codes: dict[str, str] = {}  # the same, as codes a client may map (details.problems)

    def fault(exc: documents.DocumentProblem) -> None:
        problems[exc.field] = [documents.problem_text(exc)]
        codes[exc.field] = f"identity.{exc.field}.{exc.code}"

    clean_name = clean_id = ""
    try:
        clean_name = documents.normalise_name(name)
    except documents.DocumentProblem as exc:
        fault(exc)
    try:
        clean_id = documents.normalise_id_number(id_number, today=clock.local_date())
    except documents.DocumentProblem as exc:
        fault(exc)
    if problems:
        raise IdentityInvalid(fields=problems, details={"problems": codes})
    return Person(clean_name, clean_id)


def identity_of(session: Session, account_id: str) -> VerifiedIdentity | None:
    """The account's verified identity, if any."""
    return session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.account_id == account_id))


# Built once: both rows a verification must know about, in one round trip.
_IDENTITIES = select(VerifiedIdentity).where(
    or_(
        VerifiedIdentity.account_id == bindparam("account_id"),
        VerifiedIdentity.id_lookup == bindparam("lookup"),
    )
)


def identities_for(
    session: Session, account_id: str, lookup: str
) -> tuple[VerifiedIdentity | None, VerifiedIdentity | None]:
    """(the account's own identity, the holder of `lookup`): the same row when they coincide."""
    rows = session.scalars(_IDENTITIES, {"account_id": account_id, "lookup": lookup}).all()
    own = next((row for row in rows if row.account_id == account_id), None)
    holder = next((row for row in rows if row.id_lookup == lookup), None)
    return own, holder


def displaceable(holder: VerifiedIdentity, *, live: bool) -> bool:
    """Whether a live proof (a face matched to the identity's photo, or the card checked by an
    officer) takes the identity from the account holding it: yes when that account proved it by
    name and ID number only. Those are not secret, so the holder may be someone who merely knew
    them; merging the person into that account would hand it their WeChat login and their face.
    The holder loses the identity instead (`displace`). If both accounts are the same person's,
    binding the phone merges them (the SMS code proves the phone)."""
    return live and holder.live_checked_at is None


def check_can_take(
    session: Session, account: Account, lookup: str, *, may_merge: bool, live: bool | None = None
) -> VerifiedIdentity | None:
    """Refuse before any paid call when the identity could not end up on this account; the
    account's own identity, if any. `may_merge`: the method is a live proof that may fold this
    account into the holder's; `live` (default: `may_merge`): a live proof, which displaces a
    holder that never proved the identity live."""
    own, holder = identities_for(session, account.id, lookup)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    if holder is not None and holder.account_id != account.id:
        if displaceable(holder, live=may_merge if live is None else live):
            return own
        target = session.get(Account, holder.account_id)
        if target is None or not merge.can_merge(session, source=account, target=target, live=may_merge):
            raise BoundToOtherAccount()
    return own


def commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent verification bound the same identity first
        session.rollback()
        raise BoundToOtherAccount() from exc


def refusal_reason(exc: BoundToOtherAccount | DifferentPerson) -> str:
    """The reason kept on a passed check whose identity could not be bound."""
    return REASON_BOUND_ELSEWHERE if isinstance(exc, BoundToOtherAccount) else REASON_DIFFERENT


def bind_or_refuse(
    session: Session, row: IdentityVerification, request_id: str | None, *, deps: IdentityDeps, proof: Proof
) -> Account:
    """`bind` for a passed verification `row` (an ORM object). When the identity cannot be bound
    (another account holds it, or this account holds another person), the attempt is recorded
    as failed with that reason, committed, and the refusal raised: the citizen sees why, and the
    history shows the provider was paid."""
    try:
        return bind(session, deps=deps, account_id=row.account_id, proof=proof)
    except (BoundToOtherAccount, DifferentPerson) as exc:
        finish(row, FAILED, refusal_reason(exc))
        audit_finish(session, row, request_id)
        session.commit()
        raise


def finished_values(status: str, reason: str | None) -> dict[str, Any]:
    """The columns a finished attempt sets. The provider no longer needs the encrypted name, ID
    number and handle: only the masked copies and the blind index stay."""
    return {"status": status, "reason": reason, "completed_at": clock.now(),
            "name_enc": None, "id_number_enc": None, "provider_ref_enc": None}  # fmt: skip


def finish(row: IdentityVerification, status: str, reason: str | None) -> None:
    for key, value in finished_values(status, reason).items():
        setattr(row, key, value)


def audit_finish(session: Session, row: IdentityVerification, request_id: str | None) -> None:
    session.add(audit.AuditEvent(**finish_event(row, request_id)))


def finish_event(row: IdentityVerification, request_id: str | None) -> dict[str, Any]:
    """The audit event of a finished attempt (no personal values: ids, method, reason, score)."""
    return audit.event_values(
        actor_type="citizen" if row.method != IN_PERSON else "operator",
        actor_id=row.account_id if row.method != IN_PERSON else row.operator_id,
        action=f"identity.verification_{row.status}", target_type="account", target_id=row.account_id,
        outcome="ok" if row.status == PASSED else "failed", request_id=request_id,
        details={"verification_id": row.id, "method": row.method, "reason": row.reason,
                 "provider_code": row.provider_code, "score": row.score},
    )  # fmt: skip


def identity_values(deps: IdentityDeps, proof: Proof, now: datetime) -> dict[str, Any]:
    """The verified-identity columns a proof writes. The newest proof wins for the name (a legal
    change of name shows up here); a live one also sets the live-check time."""
    person = proof.person
    values: dict[str, Any] = {
        "name_enc": deps.encryptor.encrypt(person.name, purpose=NAME_PURPOSE),
        "id_number_enc": deps.encryptor.encrypt(person.id_number, purpose=ID_PURPOSE),
        "name_masked": documents.mask_name(person.name),
        "id_number_masked": documents.mask_id_number(person.id_number),
        "method": proof.method,
        "updated_at": now,
    }
    if proof.live:
        values["live_checked_at"] = min(proof.live_at or now, now)
    return values


def level_raised_event(account_id: str, before: str, after: str, method: str) -> dict[str, Any]:
    """The audit event of an account reaching a higher level."""
    return audit.event_values(
        actor_type="system", actor_id=None, action="identity.level_raised", target_type="account",
        target_id=account_id, details={"from": before, "to": after, "method": method},
    )  # fmt: skip


def bind(session: Session, *, deps: IdentityDeps, account_id: str, proof: Proof) -> Account:
    """Give the proved identity and level to the account (or, when `proof.may_merge` and
    another account holds the identity, to that account, merging this one into it). Returns the
    account the citizen now uses.

    A re-verification of the account's own identity inserts and moves nothing and runs as is.
    Anything else runs in a savepoint: a concurrent verification that bound the same identity
    (or this account) first is seen on one retry, and the rule decides again."""
    own, holder = identities_for(session, account_id, proof.lookup)
    if own is not None and own.id_lookup == proof.lookup:
        return _take(session, deps, account_id, proof, own, holder)
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                if attempt == 2:
                    own, holder = identities_for(session, account_id, proof.lookup)
                return _take(session, deps, account_id, proof, own, holder)
        except IntegrityError:
            if attempt == 2:
                raise BoundToOtherAccount() from None
    raise AssertionError("unreachable")


def _locked(session: Session, *account_ids: str) -> dict[str, Account]:
    """The accounts, locked for this transaction (PostgreSQL) in id order and read afresh."""
    rows = session.scalars(
        select(Account).where(Account.id.in_(account_ids)).order_by(Account.id).with_for_update()
        .execution_options(populate_existing=True)
    )  # fmt: skip
    return {row.id: row for row in rows}


def displace(
    session: Session,
    deps: IdentityDeps,
    *,
    holder: Account,
    identity: VerifiedIdentity,
    by: Account,
    method: str,
) -> None:
    """Take `identity` from `holder` (who proved it by name and ID number only) for `by`, who
    has just proved it live: the holder is back at L1 and its sessions and app tokens end, so
    nothing it holds still acts as that person. Audited; not committed."""
    previous = holder.identity_level
    session.delete(identity)
    session.flush()  # the identity's unique number is free before `by` takes it
    holder.identity_level, holder.live_checked_at, holder.updated_at = "L1", None, clock.now()
    session.add(audit.AuditEvent(**audit.event_values(
        actor_type="system", actor_id=None, action="identity.displaced", target_type="account",
        target_id=holder.id, details={"from": previous, "to": "L1", "by_account": by.id, "method": method},
    )))  # fmt: skip
    revoke_all(session, revocations=deps.revocations, account_id=holder.id, reason="identity_displaced")


def _take(
    session: Session,
    deps: IdentityDeps,
    account_id: str,
    proof: Proof,
    own: VerifiedIdentity | None,
    holder: VerifiedIdentity | None,
) -> Account:
    now = clock.now()
    if own is not None and own.id_lookup != proof.lookup:
        raise DifferentPerson()
    if holder is not None and holder.account_id != account_id:
        # Locked so a concurrent merge or phone binding cannot change what is checked.
        found = _locked(session, account_id, holder.account_id)
        account, target = found.get(account_id), found.get(holder.account_id)
        if account is None or target is None:
            raise BoundToOtherAccount()
        if displaceable(holder, live=proof.live):
            displace(session, deps, holder=target, identity=holder, by=account, method=proof.method)
        else:
            if not merge.can_merge(session, source=account, target=target, live=proof.may_merge):
                raise BoundToOtherAccount()
            merge.merge(session, revocations=deps.revocations, source=account, target=target)
            account, own = target, holder
    else:
        found_account = session.get(Account, account_id)
        if found_account is None:
            raise BoundToOtherAccount()
        account = found_account
    if own is None:
        own = VerifiedIdentity(
            account_id=account.id, id_lookup=proof.lookup, level=proof.level, verified_at=now
        )
        session.add(own)
    for key, value in identity_values(deps, proof, now).items():
        setattr(own, key, value)
    own.level = higher(own.level, proof.level)
    if proof.live:
        account.live_checked_at = live_time(proof, now, account.live_checked_at)
    previous = account.identity_level
    account.identity_level = higher(account.identity_level, proof.level)
    account.updated_at = now
    if previous != account.identity_level:
        event = level_raised_event(account.id, previous, account.identity_level, proof.method)
        session.add(audit.AuditEvent(**event))
    session.flush()
    return account
