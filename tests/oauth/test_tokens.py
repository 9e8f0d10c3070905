"""Codes once, refresh rotation with reuse detection, revocation, introspection, client credentials."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.api.v1.applications.conftest import verified
from tests.oauth.conftest import basic, exchange, get_code, register


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _refresh(client, oauth_client, refresh_token, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return client.post("/oauth/token", data=data, headers=basic(oauth_client))


def test_a_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it(app, client, bank, citizen):
    code, verifier = get_code(app, client, bank, citizen["account_id"])
    first = exchange(client, bank, code, verifier)
    assert first.status_code == 200
    tok = first.get_json()
    assert client.get("/v1/applications", headers=_bearer(tok["access_token"])).status_code == 200
    again = exchange(client, bank, code, verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    after = client.get("/v1/applications", headers=_bearer(tok["access_token"]))
    assert after.status_code == 401 and after.get_json()["error"]["code"] == "auth.session_revoked"
    assert _refresh(client, bank, tok["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_a_code_expires_after_sixty_seconds(app, client, bank, citizen, clock):
    code, verifier = get_code(app, client, bank, citizen["account_id"])
    clock.advance(61)
    resp = exchange(client, bank, code, verifier)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_fifty_parallel_redemptions_of_one_code_give_at_most_one_token_and_it_is_dead(
    app, client, bank, citizen, live
):
    code, verifier = get_code(app, client, bank, citizen["account_id"])
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": bank["redirect_uri"],
        "code_verifier": verifier,
    }

    def redeem(_: int) -> httpx.Response:
        return httpx.post(live.url + "oauth/token", data=data, auth=(bank["id"], bank["secret"]), timeout=30)

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(redeem, range(50)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) <= 1 and len(statuses) == 50, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)
    # The losers were replays: the winner's token is revoked too (RFC 6749 §4.1.2), or, when a
    # replay ended its family before it was issued, the winner is refused as well.
    for token in (r.json()["access_token"] for r in results if r.status_code == 200):
        assert client.get("/v1/applications", headers=_bearer(token)).status_code == 401


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_grant(app, client, bank, tokens_for):
    who, tok = tokens_for(bank)
    fresh = _refresh(client, bank, tok["refresh_token"])
    assert fresh.status_code == 200
    new = fresh.get_json()
    assert new["refresh_token"] != tok["refresh_token"] and new["scope"] == tok["scope"]
    assert client.get("/v1/applications", headers=_bearer(new["access_token"])).status_code == 200
    reuse = _refresh(client, bank, tok["refresh_token"])  # the old one, stolen and replayed
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert client.get("/v1/applications", headers=_bearer(new["access_token"])).status_code == 401
    assert _refresh(client, bank, new["refresh_token"]).get_json()["error"] == "invalid_grant"
    grants = client.get("/v1/me/grants", headers=who["headers"]).get_json()
    assert grants == []


def test_refresh_may_narrow_the_scope_but_never_widen_it(app, client, bank, tokens_for):
    _, tok = tokens_for(bank, scope="profile.basic applications.read")
    narrow = _refresh(client, bank, tok["refresh_token"], scope="profile.basic")
    assert narrow.status_code == 200 and narrow.get_json()["scope"] == "profile.basic"
    wide = _refresh(
        client, bank, narrow.get_json()["refresh_token"], scope="profile.basic notifications.send"
    )
    assert wide.status_code == 400 and wide.get_json()["error"] == "invalid_scope"


def test_a_narrowed_refresh_narrows_the_access_token_only_never_the_refresh_token(client, bank, tokens_for):
    """RFC 6749 §6: the new refresh token's scope is the presented one's; a narrower `scope`
    narrows the access token alone, so a later refresh may ask for the rest again."""
    _, tok = tokens_for(bank, scope="profile.basic applications.read")
    narrow = _refresh(client, bank, tok["refresh_token"], scope="profile.basic")
    assert narrow.status_code == 200 and narrow.get_json()["scope"] == "profile.basic"
    assert (
        client.get("/v1/applications", headers=_bearer(narrow.get_json()["access_token"])).status_code == 403
    )
    seen = client.post(
        "/oauth/introspect", data={"token": narrow.get_json()["refresh_token"]}, headers=basic(bank)
    )
    assert seen.get_json()["scope"] == "profile.basic applications.read"
    other = _refresh(client, bank, narrow.get_json()["refresh_token"], scope="applications.read")
    assert other.status_code == 200 and other.get_json()["scope"] == "applications.read", other.get_json()
    whole = _refresh(client, bank, other.get_json()["refresh_token"])
    assert whole.status_code == 200 and whole.get_json()["scope"] == "profile.basic applications.read"


def test_a_scope_the_level_no_longer_allows_leaves_the_access_token_but_stays_on_the_grant(
    app, client, bank, seeded, tokens_for, db_session
):
    from domain.accounts.models import Account

    zhang = verified(app, 0)  # L3
    _, tok = tokens_for(
        bank, scope="profile.basic identity.match", citizen=zhang, sensitive=["identity.match"]
    )
    assert tok["scope"] == "profile.basic identity.match"

    def set_level(level: str) -> None:
        db_session.get(Account, zhang["account_id"]).identity_level = level
        db_session.commit()

    set_level("L1")
    low = _refresh(client, bank, tok["refresh_token"])
    assert low.status_code == 200 and low.get_json()["scope"] == "profile.basic"  # not issued at L1
    asked = _refresh(client, bank, low.get_json()["refresh_token"], scope="identity.match")
    assert asked.status_code == 400 and asked.get_json()["error"] == "invalid_scope"
    set_level("L3")  # the level is back (verified again): the grant still holds the scope
    back = _refresh(client, bank, low.get_json()["refresh_token"])
    assert back.status_code == 200 and back.get_json()["scope"] == "profile.basic identity.match"


def test_another_client_cannot_use_a_refresh_token(app, client, bank, tokens_for):
    other = register(app, name="另一家银行")
    _, tok = tokens_for(bank)
    assert _refresh(client, other, tok["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert _refresh(client, bank, tok["refresh_token"]).status_code == 200  # not burned by the attempt


def test_introspection_needs_client_authentication(client, bank, tokens_for):
    _, tok = tokens_for(bank)
    resp = client.post("/oauth/introspect", data={"token": tok["access_token"]})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"
    bad = client.post(
        "/oauth/introspect", data={"token": tok["access_token"]}, headers=basic({**bank, "secret": "wrong"})
    )
    assert bad.status_code == 401


def test_an_unknown_or_wrong_token_type_hint_is_ignored(client, bank, tokens_for):
    """RFC 7662 §2.1 / RFC 7009 §2.1: the server may ignore the hint and search every type; an
    unknown hint is neither unsupported_token_type nor a failed client authentication."""
    _, tok = tokens_for(bank)

    def introspect(token: str, hint: str) -> dict:
        resp = client.post(
            "/oauth/introspect", data={"token": token, "token_type_hint": hint}, headers=basic(bank)
        )
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    for _ in range(12):  # more than the 10 failures that slow a client down
        assert introspect(tok["access_token"], "jwt")["active"] is True
    assert introspect(tok["access_token"], "refresh_token")["active"] is True
    assert introspect(tok["refresh_token"], "access_token")["token_type"] == "refresh_token"
    revoked = client.post(
        "/oauth/revoke", data={"token": tok["access_token"], "token_type_hint": "jwt"}, headers=basic(bank)
    )
    assert revoked.status_code == 200 and revoked.get_json() == {}
    assert introspect(tok["access_token"], "access_token") == {"active": False}
    refused = client.get("/v1/applications", headers=_bearer(tok["access_token"]))
    assert (
        refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    )
    ended = client.post(
        "/oauth/revoke", data={"token": tok["refresh_token"], "token_type_hint": "bogus"}, headers=basic(bank)
    )
    assert ended.status_code == 200
    assert _refresh(client, bank, tok["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_only_a_failed_client_authentication_counts_towards_slow_down(client, bank, tokens_for, monkeypatch):
    """A 401 that is not invalid_client says nothing about the client's credentials."""
    from authlib.oauth2.rfc6749 import UnsupportedTokenTypeError

    _, tok = tokens_for(bank)

    def refuse(token: str, hint: str | None) -> None:
        raise UnsupportedTokenTypeError()

    with monkeypatch.context() as patched:
        patched.setattr("api.oauth.endpoints.find_token", refuse)
        for _ in range(12):
            resp = client.post("/oauth/introspect", data={"token": tok["access_token"]}, headers=basic(bank))
            assert resp.status_code == 401 and resp.get_json()["error"] == "unsupported_token_type"
    after = client.post("/oauth/introspect", data={"token": tok["access_token"]}, headers=basic(bank))
    assert after.status_code == 200 and after.get_json()["active"] is True


def test_introspection_answers_active_tokens_and_only_active_false_otherwise(app, client, bank, tokens_for):
    who, tok = tokens_for(bank)
    live_one = client.post(
        "/oauth/introspect", data={"token": tok["access_token"]}, headers=basic(bank)
    ).get_json()
    assert live_one["active"] is True and live_one["client_id"] == bank["id"]
    assert live_one["sub"] == who["account_id"] and live_one["scope"] == tok["scope"]
    rt = client.post(
        "/oauth/introspect", data={"token": tok["refresh_token"]}, headers=basic(bank)
    ).get_json()
    assert rt["active"] is True and rt["token_type"] == "refresh_token"
    other = register(app, name="别家")
    assert client.post(
        "/oauth/introspect", data={"token": tok["access_token"]}, headers=basic(other)
    ).get_json() == {"active": False}
    assert client.post("/oauth/introspect", data={"token": "garbage"}, headers=basic(bank)).get_json() == {
        "active": False
    }
    first_party = client.post("/oauth/introspect", data={"token": who["access_token"]}, headers=basic(bank))
    assert first_party.get_json() == {"active": False}
    client.post("/oauth/revoke", data={"token": tok["access_token"]}, headers=basic(bank))
    assert client.post(
        "/oauth/introspect", data={"token": tok["access_token"]}, headers=basic(bank)
    ).get_json() == {"active": False}


def test_revoking_an_access_token_ends_it_and_revoking_the_refresh_token_ends_the_family(
    app, client, bank, tokens_for
):
    _, tok = tokens_for(bank)
    assert (
        client.post("/oauth/revoke", data={"token": tok["access_token"]}, headers=basic(bank)).status_code
        == 200
    )
    assert client.get("/v1/applications", headers=_bearer(tok["access_token"])).status_code == 401
    fresh = _refresh(client, bank, tok["refresh_token"]).get_json()
    assert (
        client.post("/oauth/revoke", data={"token": fresh["refresh_token"]}, headers=basic(bank)).status_code
        == 200
    )
    assert client.get("/v1/applications", headers=_bearer(fresh["access_token"])).status_code == 401
    assert _refresh(client, bank, fresh["refresh_token"]).get_json()["error"] == "invalid_grant"
    unknown = client.post("/oauth/revoke", data={"token": "nothing-like-a-token"}, headers=basic(bank))
    assert unknown.status_code == 200  # RFC 7009 §2.2


def test_client_credentials_gives_only_the_apps_own_scopes(app, client, bank, native):
    ok = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "catalog.read"},
        headers=basic(bank),
    )
    assert (
        ok.status_code == 200
        and ok.get_json()["scope"] == "catalog.read"
        and "refresh_token" not in ok.get_json()
    )
    asked = {"grant_type": "client_credentials", "scope": "applications.read"}
    citizen_data = client.post("/oauth/token", data=asked, headers=basic(bank))
    assert citizen_data.status_code == 400 and citizen_data.get_json()["error"] == "invalid_scope"
    token = ok.get_json()["access_token"]
    assert client.get("/v1/applications", headers=_bearer(token)).status_code == 401  # not a citizen
    public = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": native["id"]})
    assert public.status_code in (400, 401)


def test_password_and_implicit_grants_do_not_exist(client, bank):
    resp = client.post(
        "/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"}, headers=basic(bank)
    )
    assert resp.status_code == 400 and resp.get_json()["error"] == "unsupported_grant_type"


def test_suspending_a_client_ends_its_tokens_at_once_and_its_requests(app, client, bank, tokens_for):
    from core.db import db
    from domain.oauth import clients
    from domain.operators.audit_log import CLI_ACTOR

    _, tok = tokens_for(bank)
    svc = app.extensions["yiwang"]
    clients.set_status(
        db.session(), actor=CLI_ACTOR, revocations=svc.revocations, client_id=bank["id"], status="suspended"
    )
    assert client.get("/v1/applications", headers=_bearer(tok["access_token"])).status_code == 401
    assert _refresh(client, bank, tok["refresh_token"]).get_json()["error"] == "invalid_client"


def test_guessing_a_client_secret_is_slowed_down_without_locking_the_client_out(client, bank, clock):
    form = {"grant_type": "client_credentials", "scope": "catalog.read"}
    guesser = {"REMOTE_ADDR": "203.0.113.9"}
    wrong = basic({"id": bank["id"], "secret": "guess"})
    # Working requests never count, however many.
    for _ in range(12):
        assert (
            client.post("/oauth/token", data=form, headers=basic(bank), environ_base=guesser).status_code
            == 200
        )
    for _ in range(10):
        failed = client.post("/oauth/token", data=form, headers=wrong, environ_base=guesser)
        assert failed.status_code == 401 and failed.get_json()["error"] == "invalid_client"
    slowed = client.post("/oauth/token", data=form, headers=basic(bank), environ_base=guesser)
    assert slowed.status_code == 429 and slowed.get_json()["error"] == "slow_down"
    assert 0 < int(slowed.headers["Retry-After"]) <= 600 and slowed.headers["Cache-Control"] == "no-store"
    # The client's own backend, at another address, goes on working.
    own = client.post(
        "/oauth/token", data=form, headers=basic(bank), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert own.status_code == 200
    clock.advance(seconds=601)
    assert (
        client.post("/oauth/token", data=form, headers=basic(bank), environ_base=guesser).status_code == 200
    )


def test_one_address_failing_for_many_clients_is_slowed_down(client, bank):
    form = {"grant_type": "client_credentials", "scope": "catalog.read"}
    sweeper = {"REMOTE_ADDR": "203.0.113.10"}
    for i in range(50):
        guess = basic({"id": f"made-up-{i}", "secret": "guess"})
        assert client.post("/oauth/token", data=form, headers=guess, environ_base=sweeper).status_code == 401
    assert (
        client.post("/oauth/token", data=form, headers=basic(bank), environ_base=sweeper).status_code == 429
    )
