"""A sweeper pass goes on when one of the things its steps need is away."""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy import func, select

from core import clock
from core.db import db
from domain.auth.sessions import revoke_all
from domain.forwarding.models import ProvinceNonce
from tests.conftest import make_citizen
from workers import sweeper


def test_with_redis_away_the_database_work_is_still_done(app, monkeypatch):
    """The revocations' rebuild needs Redis; purging nonces, drafts and the rest do not."""
    services = app.extensions["yiwang"]
    who = make_citizen(app)
    session = db.session()
    revoke_all(session, revocations=services.revocations, account_id=who["account_id"], reason="logout")
    session.add(ProvinceNonce(profile="reference", nonce="old", seen_at=clock.now() - timedelta(hours=1)))
    session.commit()
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(services.revocations, "_redis", away)
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)

    with app.app_context():
        done = sweeper.run_once(0)

    assert done["revocations"] == 0 and done["nonces_purged"] == 1
    db.session.remove()
    assert db.session().scalar(select(func.count()).select_from(ProvinceNonce)) == 0
