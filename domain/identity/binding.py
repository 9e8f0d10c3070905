"""Validating a person, and binding a proved identity to an account (one ID number, one account)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import LookupHasher
from domain.accounts.models import Account
from domain.identity import documents, merge
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE, IdentityDeps
from domain.identity.errors import BoundToOtherAccount, DifferentPerson, IdentityInvalid
from domain.identity.levels import higher
from domain.identity.models import FAILED, IN_PERSON, PASSED, IdentityVerification, VerifiedIdentity
from domain.identity.reasons import REASON_BOUND_ELSEWHERE, REASON_DIFFERENT
from integrations.realname.base import Person


def id_lookup(hasher: LookupHasher, id_number: str) -> str:
    """The blind index of an ID number."""
    return hasher.hash(id_number, purpose=ID_PURPOSE)


def person_from(name: str, id_number: str) -> Person:
    """Validate and normalise, or raise IdentityInvalid naming each bad field."""
    problems: dict[str, list[str]] = {}
    clean_name = clean_id = ""
    try:
        clean_name = documents.normalise_name(name)
    except documents.DocumentProblem as exc:
        problems["name"] = [f"identity.name.{exc.code}"]
    try:
        clean_id = documents.normalise_id_number(id_number, today=clock.now().date())
    except documents.DocumentProblem as exc:
        problems["id_number"] = [f"identity.id_number.{exc.code}"]
    if problems:
        raise IdentityInvalid(fields=problems)
    return Person(clean_name, clean_id)


def identity_of(session: Session, account_id: str) -> VerifiedIdentity | None:
    """The account's verified identity, if any."""
    return session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.account_id == account_id))


def holder_of(session: Session, lookup: str) -> VerifiedIdentity | None:
    return session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.id_lookup == lookup))


def check_can_take(session: Session, account: Account, lookup: str, *, may_merge: bool) -> None:
    """Refuse before any paid call when the identity could not end up on this account.
    `may_merge`: the method is a live proof that may fold this account into the holder's."""
    own = identity_of(session, account.id)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    holder = holder_of(session, lookup)
    if holder is not None and holder.account_id != account.id:
        target = session.get(Account, holder.account_id)
        if target is None or not merge.can_merge(session, source=account, target=target, live=may_merge):
            raise BoundToOtherAccount()


def commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent verification bound the same identity first
        session.rollback()
        raise BoundToOtherAccount() from exc


def bind_or_refuse(session: Session, row: IdentityVerification, request_id: str | None, **kwargs: Any) -> str:
    """`bind` for a passed verification `row`. When the identity cannot be bound (another
    account holds it, or this account holds another person), the attempt is recorded as failed
    with that reason, committed, and the refusal raised: the citizen sees why, and the history
    shows the provider was paid."""
    try:
        return bind(session, **kwargs)
    except (BoundToOtherAccount, DifferentPerson) as exc:
        finish(
            row, FAILED, REASON_BOUND_ELSEWHERE if isinstance(exc, BoundToOtherAccount) else REASON_DIFFERENT
        )
        audit_finish(session, row, request_id)
        session.commit()
        raise


def finish(row: IdentityVerification, status: str, reason: str | None) -> None:
    row.status = status
    row.reason = reason
    row.completed_at = clock.now()
    # The provider no longer needs them: keep only the masked copies and the blind index.
    row.name_enc = row.id_number_enc = row.provider_ref_enc = None


def audit_finish(session: Session, row: IdentityVerification, request_id: str | None) -> None:
    audit.record(
        session, actor_type="citizen" if row.method != IN_PERSON else "operator",
        actor_id=row.account_id if row.method != IN_PERSON else row.operator_id,
        action=f"identity.verification_{row.status}", target_type="account", target_id=row.account_id,
        outcome="ok" if row.status == PASSED else "failed", request_id=request_id,
        details={"verification_id": row.id, "method": row.method, "reason": row.reason,
                 "provider_code": row.provider_code, "score": row.score},
    )  # fmt: skip


def bind(
    session: Session,
    *,
    deps: IdentityDeps,
    account_id: str,
    person: Person,
    lookup: str,
    level: str,
    method: str,
    live: bool,
    may_merge: bool,
) -> str:
    """Give the proved identity and level to the account (or, when `may_merge` and another
    account holds the identity, to that account, merging this one into it). Returns the account
    id the citizen now uses. Runs in a savepoint: a concurrent verification that bound the same
    identity (or this account) first is seen on one retry, and the rule decides again."""
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return _bind(session, deps=deps, account_id=account_id, person=person, lookup=lookup,
                             level=level, method=method, live=live, may_merge=may_merge)  # fmt: skip
        except IntegrityError:
            if attempt == 2:
                raise BoundToOtherAccount() from None
    raise AssertionError("unreachable")


def _bind(
    session: Session,
    *,
    deps: IdentityDeps,
    account_id: str,
    person: Person,
    lookup: str,
    level: str,
    method: str,
    live: bool,
    may_merge: bool,
) -> str:
    now = clock.now()
    # Locked (PostgreSQL) so a concurrent merge or phone binding cannot change what is checked.
    account = session.get(Account, account_id, with_for_update=True)
    if account is None:
        raise BoundToOtherAccount()
    own = identity_of(session, account_id)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    holder = holder_of(session, lookup)
    if holder is not None and holder.account_id != account_id:
        target = session.get(Account, holder.account_id, with_for_update=True)
        if target is None or not merge.can_merge(session, source=account, target=target, live=may_merge):
            raise BoundToOtherAccount()
        merge.merge(session, revocations=deps.revocations, source=account, target=target)
        account, own = target, holder
    if own is None:
        own = VerifiedIdentity(
            account_id=account.id, id_lookup=lookup, level=level, method=method, verified_at=now,
            name_enc="", id_number_enc="", name_masked="", id_number_masked="", updated_at=now,
        )  # fmt: skip
        session.add(own)
    # The newest proof wins for the name (a legal change of name shows up here).
    own.name_enc = deps.encryptor.encrypt(person.name, purpose=NAME_PURPOSE)
    own.id_number_enc = deps.encryptor.encrypt(person.id_number, purpose=ID_PURPOSE)
    own.name_masked = documents.mask_name(person.name)
    own.id_number_masked = documents.mask_id_number(person.id_number)
    own.level = higher(own.level, level)
    own.method = method
    own.updated_at = now
    if live:
        own.live_checked_at = now
        account.live_checked_at = now
    previous = account.identity_level
    account.identity_level = higher(account.identity_level, level)
    account.updated_at = now
    if previous != account.identity_level:
        audit.record(
            session, actor_type="system", actor_id=None, action="identity.level_raised",
            target_type="account", target_id=account.id,
            details={"from": previous, "to": account.identity_level, "method": method},
        )  # fmt: skip
    session.flush()
    return account.id
