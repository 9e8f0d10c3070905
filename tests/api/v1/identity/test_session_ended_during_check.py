"""A paid ID check that passes is kept even when the caller's session ended while the provider
answered (the session's last access token outlives it by minutes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from core import clock as clock_mod
from domain.auth.models import LoginSession
from domain.identity.models import IdentityVerification, VerifiedIdentity
from tests.api.v1.identity.conftest import start
from tests.conftest import make_citizen


def test_a_passed_id_check_is_kept_when_the_callers_session_ended_meanwhile(
    app: Any, client: Any, sims: Any, db_session: Any, clock: Any
) -> None:
    who = make_citizen(app)
    # The session reaches its absolute end while its last access token is still valid.
    db_session.execute(
        update(LoginSession)
        .where(LoginSession.id == who["session_id"])
        .values(expires_at=clock_mod.now() + timedelta(seconds=60))
    )
    db_session.commit()
    clock.advance(seconds=120)
    before = sims["id_check"].calls()
    resp = start(client, who, "id_check", consent=None)
    assert sims["id_check"].calls() == before + 1  # the provider was asked, and paid
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "auth.session_revoked"
    db_session.rollback()
    rows = db_session.scalars(select(IdentityVerification)).all()
    held = db_session.scalars(select(VerifiedIdentity)).all()
    assert [r.status for r in rows] == ["passed"] and len(held) == 1, (rows, held)
