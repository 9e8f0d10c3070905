"""Refresh rotation, reuse detection, logout, session list and revocation over HTTP."""

from tests.conftest import make_citizen


def _refresh(client, token, **headers):
    return client.post("/v1/auth/refresh", json={"refresh_token": token}, headers=headers)


def test_refresh_rotates_and_old_token_stops_working(client, citizen):
    r = _refresh(client, citizen["refresh_token"])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["refresh_token"] != citizen["refresh_token"]
    assert body["session_id"] == citizen["session_id"]
    assert body["expires_in"] == 900
    # New access token works.
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    # The new refresh token can itself be used once.
    assert _refresh(client, body["refresh_token"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_session(client, citizen):
    first = _refresh(client, citizen["refresh_token"]).get_json()
    replay = _refresh(client, citizen["refresh_token"])
    assert replay.status_code == 401
    assert replay.get_json()["error"]["code"] == "auth.refresh_reused"
    # Both the attacker's and the legitimate holder's tokens are now dead.
    assert _refresh(client, first["refresh_token"]).get_json()["error"]["code"] == "auth.session_revoked"
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert me.status_code == 401 and me.get_json()["error"]["code"] == "auth.session_revoked"
    me_old = client.get("/v1/me", headers=citizen["headers"])
    assert me_old.status_code == 401


def test_retry_with_idempotency_key_returns_same_tokens_instead_of_tripping_reuse(client, citizen):
    key = {"Idempotency-Key": "refresh-attempt-0001"}
    a = _refresh(client, citizen["refresh_token"], **key)
    b = _refresh(client, citizen["refresh_token"], **key)  # the phone lost the first response
    assert a.status_code == b.status_code == 200
    assert a.get_json() == b.get_json()
    assert b.headers.get("Idempotent-Replayed") == "true"
    assert _refresh(client, a.get_json()["refresh_token"]).status_code == 200


def test_unknown_and_expired_refresh_tokens(client, citizen, clock):
    r = _refresh(client, "rt_" + "x" * 40)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.refresh_invalid"
    clock.advance(days=31)
    r = _refresh(client, citizen["refresh_token"])
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.refresh_invalid"


def test_access_token_expires_after_15_minutes(client, citizen, clock):
    clock.advance(14 * 60)
    assert client.get("/v1/me", headers=citizen["headers"]).status_code == 200
    clock.advance(61)
    r = client.get("/v1/me", headers=citizen["headers"])
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.token_expired"


def test_logout_ends_session_immediately(client, citizen):
    r = client.post("/v1/auth/logout", headers=citizen["headers"])
    assert r.status_code == 204
    me = client.get("/v1/me", headers=citizen["headers"])
    assert me.status_code == 401 and me.get_json()["error"]["code"] == "auth.session_revoked"
    assert _refresh(client, citizen["refresh_token"]).status_code == 401


def test_sessions_list_and_revoke_other_device(app, client, clock):
    phone = "13912345678"
    phone_a = make_citizen(app, phone=phone, device_label="华为 Mate 60")
    clock.advance(5)
    phone_b = make_citizen(app, phone=phone, device_label="iPhone 15", channel="miniprogram")
    assert phone_a["account_id"] == phone_b["account_id"]
    listing = client.get("/v1/me/sessions", headers=phone_b["headers"]).get_json()
    assert isinstance(listing, list), listing
    assert [s["device_label"] for s in listing] == ["iPhone 15", "华为 Mate 60"]
    assert [s["current"] for s in listing] == [True, False]
    assert {s["channel"] for s in listing} == {"app", "miniprogram"}
    # Sign out device A from device B: A's access token stops working at once.
    r = client.delete(f"/v1/me/sessions/{phone_a['session_id']}", headers=phone_b["headers"])
    assert r.status_code == 204
    assert client.get("/v1/me", headers=phone_a["headers"]).status_code == 401
    assert client.get("/v1/me", headers=phone_b["headers"]).status_code == 200
    assert len(client.get("/v1/me/sessions", headers=phone_b["headers"]).get_json()) == 1


def test_cannot_revoke_someone_elses_session(app, client):
    alice = make_citizen(app, phone="13700000001")
    bob = make_citizen(app, phone="13700000002")
    r = client.delete(f"/v1/me/sessions/{alice['session_id']}", headers=bob["headers"])
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "auth.session_not_found"
    assert client.get("/v1/me", headers=alice["headers"]).status_code == 200


def test_me_full_phone_is_audited(app, client, db_session):
    from sqlalchemy import select

    from core.audit import AuditEvent

    who = make_citizen(app, phone="13600001111")
    masked = client.get("/v1/me", headers=who["headers"]).get_json()
    assert masked["phone"] == "136****1111"
    assert db_session.scalars(select(AuditEvent).where(AuditEvent.action == "pii.read")).all() == []
    full = client.get("/v1/me/phone", headers=who["headers"]).get_json()
    assert full["phone"] == "13600001111"
    events = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "pii.read")).all()
    assert len(events) == 1 and events[0].actor_id == who["account_id"]
    assert "13600001111" not in str(events[0].details)


def test_revocation_reaches_redis_only_when_the_database_commit_does(app, db_session, services, citizen):
    from domain.auth import sessions

    sessions.revoke_all(
        db_session, revocations=services.revocations, account_id=citizen["account_id"], reason="x"
    )
    db_session.flush()
    assert not services.revocations.is_revoked(citizen["session_id"])
    db_session.rollback()
    assert not services.revocations.is_revoked(citizen["session_id"])
    sessions.revoke_all(
        db_session, revocations=services.revocations, account_id=citizen["account_id"], reason="x"
    )
    db_session.commit()
    assert services.revocations.is_revoked(citizen["session_id"])


def test_a_device_whose_refresh_token_ran_out_is_not_listed_as_signed_in(app, client, clock):
    """An old phone left unused past REFRESH_TOKEN_TTL (30 days) can no longer get a token, so
    it is signed out: the device list no longer shows it among the signed-in ones."""
    phone = "13912345679"
    old = make_citizen(app, phone=phone, device_label="旧手机")
    used = make_citizen(app, phone=phone, device_label="常用手机")
    clock.advance(app.config["REFRESH_TOKEN_TTL"] - 60)
    kept = _refresh(client, used["refresh_token"]).get_json()  # the phone in use refreshes
    clock.advance(120)
    assert _refresh(client, old["refresh_token"]).get_json()["error"]["code"] == "auth.refresh_invalid"
    headers = {"Authorization": f"Bearer {kept['access_token']}"}
    listing = client.get("/v1/me/sessions", headers=headers).get_json()
    assert [s["device_label"] for s in listing] == ["常用手机"]
