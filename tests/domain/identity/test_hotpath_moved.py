"""The verification fast path notices the account's own identity row going away under it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete

from domain.identity import hotpath
from domain.identity.binding import Proof, id_lookup, person_from
from domain.identity.models import VerifiedIdentity
from tests.api.v1.applications.conftest import verified


def test_an_identity_gone_between_the_read_and_the_update_is_not_taken_for_bound(
    app: Any, db_session: Any
) -> None:
    """A stale read of the account's own identity (moved to another account meanwhile) made the
    fast path raise the account's level on a row that no longer existed: it now hands over to
    the full rule (binding.bind)."""
    citizen = verified(app, 0)
    deps = app.extensions["yiwang"].identity
    person = person_from(citizen["name"], citizen["id_number"])
    lookup = id_lookup(deps.hasher, person.id_number)
    state = hotpath.account_state(db_session.connection(), citizen["account_id"], lookup)
    assert state.own_id is not None
    db_session.execute(delete(VerifiedIdentity).where(VerifiedIdentity.id == state.own_id))  # moved away
    proof = Proof(person=person, lookup=lookup, level="L3", method="wechat_face", live=True, may_merge=False)
    with pytest.raises(hotpath.IdentityMoved):
        hotpath.take(db_session, state, deps=deps, proof=proof)
    db_session.rollback()
