"""GET /v1/me is served from Redis, and every committed change to the account shows at once."""

from __future__ import annotations

from core.redis import get_redis
from domain.accounts import service as accounts
from tests.conftest import make_citizen


def fresh_citizen(app, **kwargs):
    """A citizen whose login tombstone (a few seconds long) has already expired."""
    who = make_citizen(app, **kwargs)
    get_redis().delete(f"profile:{who['account_id']}")
    return who


def cached(account_id):
    raw = get_redis().get(f"profile:{account_id}")
    return raw is not None and raw != b"-"


def test_profile_is_cached_and_dropped_when_the_phone_changes(app, client, db_session, services):
    who = fresh_citizen(app, phone="13711112222")
    assert not cached(who["account_id"])
    assert client.get("/v1/me", headers=who["headers"]).get_json()["phone"] == "137****2222"
    assert cached(who["account_id"])  # the next read skips the database
    account = accounts.get_account(db_session, who["account_id"])
    accounts.bind_phone(
        db_session, encryptor=services.encryptor, hasher=services.hasher, account=account, phone="13799998888"
    )
    # Not committed yet: readers still see the committed phone.
    assert client.get("/v1/me", headers=who["headers"]).get_json()["phone"] == "137****2222"
    db_session.commit()
    assert not cached(who["account_id"])
    assert client.get("/v1/me", headers=who["headers"]).get_json()["phone"] == "137****8888"


def test_deleting_an_account_is_seen_at_once(app, client, db_session):
    who = fresh_citizen(app)
    assert client.get("/v1/me", headers=who["headers"]).status_code == 200
    accounts.set_status(db_session, account_id=who["account_id"], status="deleted", actor_id="op", reason="x")
    db_session.commit()
    r = client.get("/v1/me", headers=who["headers"])
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "account.not_found"


def test_a_rolled_back_change_leaves_the_cache_alone(app, client, db_session):
    who = fresh_citizen(app)
    client.get("/v1/me", headers=who["headers"])
    assert cached(who["account_id"])
    accounts.set_status(db_session, account_id=who["account_id"], status="locked", actor_id="op", reason="x")
    db_session.flush()
    db_session.rollback()
    assert cached(who["account_id"])
    assert client.get("/v1/me", headers=who["headers"]).get_json()["status"] == "active"


def test_a_stale_read_cannot_overwrite_an_invalidation(app, services):
    from datetime import UTC, datetime

    cache = services.profiles
    stale = {"status": "active", "identity_level": "L0", "created_at": datetime.now(UTC),
             "masked_phone": None, "channels": {}}  # fmt: skip
    cache.invalidate({"acc-1"})
    cache.put("acc-1", stale)  # a reader that loaded the row before the commit
    assert cache.get("acc-1") is None


def test_redis_down_falls_back_to_the_database(app, client, monkeypatch, services):
    from redis.exceptions import ConnectionError as RedisConnectionError

    who = make_citizen(app, phone="13722223333")

    def down(*_a, **_k):
        raise RedisConnectionError("down")

    monkeypatch.setattr(services.profiles._redis, "get", down)
    monkeypatch.setattr(services.profiles._redis, "set", down)
    assert client.get("/v1/me", headers=who["headers"]).get_json()["phone"] == "137****3333"
