"""A withdrawn grant's or an unapproved app's tokens stay refused for as long as they live,
even when apps' tokens live longer than citizens' (OAUTH_ACCESS_TOKEN_TTL)."""

from __future__ import annotations

from typing import Any

from domain.oauth.tokens import OAuthPolicy
from tests.domain.operators.factories import admin_headers, make_operator
from tests.oauth.conftest import basic


def _two_hour_app_tokens(app: Any, monkeypatch: Any) -> None:
    svc = app.extensions["yiwang"]
    monkeypatch.setattr(svc, "oauth_policy", OAuthPolicy(audience=svc.oauth_policy.audience, access_ttl=7200))
    monkeypatch.setattr(svc.revocations, "_ttl", 7200 + 60)  # as the factory sizes it for that setting


def test_the_revocation_list_lasts_as_long_as_the_longest_access_token(app_config: dict) -> None:
    from factory import create_app

    longer_apps = create_app(app_config | {"ACCESS_TOKEN_TTL": 900, "OAUTH_ACCESS_TOKEN_TTL": 7200})
    assert longer_apps.extensions["yiwang"].revocations._ttl >= 7200
    longer_citizens = create_app(app_config | {"ACCESS_TOKEN_TTL": 1800, "OAUTH_ACCESS_TOKEN_TTL": 600})
    assert longer_citizens.extensions["yiwang"].revocations._ttl >= 1800


def test_a_withdrawn_grant_stays_withdrawn_after_redis_is_rebuilt(
    app: Any, client: Any, bank: dict, tokens_for: Any, db_session: Any, monkeypatch: Any, clock: Any
) -> None:
    from core.redis import get_redis

    _two_hour_app_tokens(app, monkeypatch)
    who, tok = tokens_for(bank)
    gid = client.get("/v1/me/grants", headers=who["headers"]).get_json()[0]["id"]
    assert client.delete(f"/v1/me/grants/{gid}", headers=who["headers"]).status_code == 204
    clock.advance(1200)  # 20 minutes on; the app's token is valid for two hours
    get_redis().flushdb()
    app.extensions["yiwang"].revocations.rebuild(db_session)  # as the sweeper does each pass
    resp = client.get("/v1/applications", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert resp.status_code == 401


def test_an_app_set_back_to_pending_loses_its_citizens_tokens(
    app: Any, client: Any, bank: dict, tokens_for: Any
) -> None:
    _, tok = tokens_for(bank)
    h = admin_headers(client, make_operator(app, username="alice", roles=("admin",)))
    assert (
        client.post(
            f"/admin/v1/oauth-clients/{bank['id']}/status", json={"status": "pending"}, headers=h
        ).status_code
        == 200
    )
    resp = client.get("/v1/applications", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert resp.status_code == 401
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        headers=basic(bank),
    )
    assert refreshed.status_code in (400, 401)
    assert (
        client.post(
            f"/admin/v1/oauth-clients/{bank['id']}/status", json={"status": "approved"}, headers=h
        ).status_code
        == 200
    )
    again = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        headers=basic(bank),
    )
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant", again.get_json()
