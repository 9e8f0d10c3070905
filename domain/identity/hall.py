"""In-person checks at a service hall: the non-face path to L3."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from core import clock
from core.db import is_id, lock_one
from core.errors import Text
from domain.accounts.errors import AccountNotFound
from domain.accounts.models import Account
from domain.accounts.service import ensure_usable
from domain.appointments.errors import HallNotFound
from domain.appointments.models import Hall
from domain.identity import documents
from domain.identity.binding import (
    Proof,
    audit_finish,
    bind_or_refuse,
    commit,
    displaceable,
    finish,
    id_lookup,
    identities_for,
    person_from,
)
from domain.identity.deps import NAME_PURPOSE, IdentityDeps, Outcome
from domain.identity.errors import BoundToOtherAccount, DifferentPerson, InPersonMismatch
from domain.identity.models import IN_PERSON, PASSED, PENDING, IdentityVerification, VerifiedIdentity
from domain.operators.errors import HallRequired
from domain.operators.scope import UNSCOPED, Scope


def hall_of_check(
    session: Session, *, scope: Scope, hall_id: str | None, hall: str | None
) -> tuple[str | None, str]:
    """The hall of an in-person check as recorded: its id (None for a typed name) and its name.

    `hall_id` names a hall (`halls`): it must exist (404 `appointments.hall_not_found`) and be
    one of the officer's when they are assigned to halls (403 `admin.out_of_scope`); its id and
    name are recorded. The free-text `hall` of earlier clients is still taken from officers not
    tied to halls (no id then); an officer tied to halls names one of them by id, or none when
    they have exactly one (422 `admin.hall_required` otherwise). Both at once are 422."""
    if hall_id is not None and hall is not None:
        both = Text("Give hall_id or hall, not both", "hall_id 与 hall 只能填写一个")
        raise HallRequired(fields={"hall": [both]})
    if hall_id is None and hall is not None and scope.halls is None:
        text = hall.strip()
        if not text:
            raise HallRequired(fields={"hall": [Text("Required", "请填写大厅")]})
        return None, text[:64]
    if hall_id is None and hall is not None:  # an officer tied to halls: not a typed name
        only_ids = Text("Choose one of your halls by hall_id", "请通过 hall_id 选择您所在的大厅")
        raise HallRequired(fields={"hall_id": [only_ids]})
    chosen = scope.hall_for(hall_id)
    row = session.get(Hall, chosen) if is_id(chosen) else None
    if row is None:
        raise HallNotFound()
    return row.id, row.name[:64]


def record_in_person(
    session: Session,
    *,
    deps: IdentityDeps,
    operator_id: str,
    account_id: str,
    name: str,
    id_number: str,
    hall: str | None = None,
    hall_id: str | None = None,
    scope: Scope = UNSCOPED,
    request_id: str | None,
) -> Outcome:
    """An operator checked the citizen and their ID card at a service hall: L3 without a face
    scan. The identity must be free or already this account's (no merges by operators). The
    hall is named as `hall_of_check` says (checked first: nothing is read or written for a hall
    outside the officer's scope).

    The officer types the name and number; no provider checks them. When the account already
    holds a verified identity, the entry must be that identity (same ID number and name after
    normalisation): 409 `identity.different_person` for another number, 409
    `identity.in_person_mismatch` for another name. Verified data is never replaced by a
    typed entry (a legal change of name is proved by a face check, which asks the provider)."""
    hall_id, hall = hall_of_check(session, scope=scope, hall_id=hall_id, hall=hall)
    person = person_from(name, id_number)
    lookup = id_lookup(deps.hasher, person.id_number)
    # Locked: a closure of the account meanwhile either finished first (404) or waits for this.
    account = lock_one(session, Account, Account.id == account_id)
    if account is None:
        raise AccountNotFound()
    ensure_usable(account)
    own, holder = identities_for(session, account_id, lookup)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    if own is not None and not _same_name(deps, own, person.name):
        raise InPersonMismatch()
    if holder is not None and holder.account_id != account_id and not displaceable(holder, live=True):
        raise BoundToOtherAccount()  # no merges by operators; a name-and-number holder gives way
    now = clock.now()
    row = IdentityVerification(
        account_id=account_id, method=IN_PERSON, channel="hall", status=PENDING,
        out_ref=uuid.uuid4().hex, id_lookup=lookup, name_masked=documents.mask_name(person.name),
        id_number_masked=documents.mask_id_number(person.id_number), created_at=now, expires_at=now,
        operator_id=operator_id, hall=hall[:64], hall_id=hall_id,
    )  # fmt: skip
    session.add(row)
    finish(row, PASSED, None)
    proof = Proof(person, lookup, "L3", IN_PERSON, live=True, may_merge=False)
    bound = bind_or_refuse(session, row, request_id, deps=deps, proof=proof)
    audit_finish(session, row, request_id)
    level = bound.identity_level
    commit(session)
    return Outcome(row, account_id, level_changed=True, identity_level=level)


def _same_name(deps: IdentityDeps, identity: VerifiedIdentity, name: str) -> bool:
    """Whether `name` (normalised) is the identity's verified name, normalised the same way."""
    verified = deps.encryptor.decrypt(identity.name_enc, purpose=NAME_PURPOSE)
    try:
        verified = documents.normalise_name(verified)
    except documents.DocumentProblem:  # stored before today's rules: compare as stored
        pass
    return verified == name
