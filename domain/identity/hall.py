"""In-person checks at a service hall: the non-face path to L3."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from core import clock
from domain.accounts.service import ensure_usable, get_account
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
from domain.identity.deps import IdentityDeps, Outcome
from domain.identity.errors import BoundToOtherAccount, DifferentPerson
from domain.identity.models import IN_PERSON, PASSED, PENDING, IdentityVerification


def record_in_person(
    session: Session,
    *,
    deps: IdentityDeps,
    operator_id: str,
    account_id: str,
    name: str,
    id_number: str,
    hall: str,
    request_id: str | None,
) -> Outcome:
    """An operator checked the citizen and their ID card at a service hall: L3 without a face
    scan. The identity must be free or already this account's (no merges by operators)."""
    person = person_from(name, id_number)
    lookup = id_lookup(deps.hasher, person.id_number)
    account = get_account(session, account_id)
    ensure_usable(account)
    own, holder = identities_for(session, account_id, lookup)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    if holder is not None and holder.account_id != account_id and not displaceable(holder, live=True):
        raise BoundToOtherAccount()  # no merges by operators; a name-and-number holder gives way
    now = clock.now()
    row = IdentityVerification(
        account_id=account_id, method=IN_PERSON, channel="hall", status=PENDING,
        out_ref=uuid.uuid4().hex, id_lookup=lookup, name_masked=documents.mask_name(person.name),
        id_number_masked=documents.mask_id_number(person.id_number), created_at=now, expires_at=now,
        operator_id=operator_id, hall=hall[:64],
    )  # fmt: skip
    session.add(row)
    finish(row, PASSED, None)
    proof = Proof(person, lookup, "L3", IN_PERSON, live=True, may_merge=False)
    bound = bind_or_refuse(session, row, request_id, deps=deps, proof=proof)
    audit_finish(session, row, request_id)
    level = bound.identity_level
    commit(session)
    return Outcome(row, account_id, level_changed=True, identity_level=level)
