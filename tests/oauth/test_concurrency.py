"""The citizen's control against concurrent token requests: a withdrawal that crosses a code
exchange or a refresh, a code redeemed after the consent was narrowed, two consents at once.

Each race is made deterministic: a step of one request is wrapped so that, at the point where
the old code read something it later relied on, the competing request runs in another thread
(with its own test client) until it finishes or waits on a lock (then the first goes on)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from api.oauth import grants as grant_classes
from core.db import db
from domain.oauth import grants as oauth_grants
from domain.oauth import tokens as oauth_tokens
from domain.oauth.models import OAuthGrant
from tests.concurrency import Competing
from tests.conftest import make_citizen
from tests.oauth.conftest import (
    authorize_params,
    basic,
    consent,
    exchange,
    get_code,
    pkce,
    redirect_params,
    sign_in_browser,
)


def once(hook: Callable[[], None]) -> Callable[[], None]:
    done = threading.Event()

    def fire() -> None:
        if not done.is_set():
            done.set()
            hook()

    return fire


def _grant_id(account_id: str) -> str:
    session = db.session()
    gid = session.scalar(select(OAuthGrant.id).where(OAuthGrant.account_id == account_id))
    db.remove()
    return gid


def _withdraw(who: dict, gid: str) -> Callable[[Any], Any]:
    return lambda http: http.delete(f"/v1/me/grants/{gid}", headers=who["headers"])


def _refresh(oauth_client: dict, refresh_token: str) -> Callable[[Any], Any]:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return lambda http: http.post("/oauth/token", data=data, headers=basic(oauth_client))


def _still_works(app: Any, oauth_client: dict, body: dict) -> list[str]:
    http = app.test_client()
    works = []
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    if http.get("/v1/applications", headers=bearer).status_code == 200:
        works.append("access token")
    seen = http.post("/oauth/introspect", data={"token": body["refresh_token"]}, headers=basic(oauth_client))
    if seen.get_json().get("active"):
        works.append("refresh token")
    return works


def test_a_code_exchange_during_a_withdrawal_gives_no_token_that_works(app, client, bank, monkeypatch):
    """The exchange runs after the withdrawal read the grant's token families and before it
    committed: it must wait for the withdrawal and be refused, or its tokens be ended with it."""
    who = make_citizen(app)
    code, verifier = get_code(app, app.test_client(), bank, who["account_id"])
    gid = _grant_id(who["account_id"])
    others: list[Competing] = []
    real = oauth_tokens.revoke_families
    fire = once(lambda: others.append(Competing(app, lambda http: exchange(http, bank, code, verifier))))

    def between_read_and_revoke(
        session: Any, revocations: Any, family_ids: list[str], *, reason: str
    ) -> None:
        if reason == "citizen":
            fire()
        real(session, revocations, family_ids, reason=reason)

    monkeypatch.setattr(oauth_tokens, "revoke_families", between_read_and_revoke)
    assert client.delete(f"/v1/me/grants/{gid}", headers=who["headers"]).status_code == 204
    assert others, "the withdrawal did not end the grant's token families"
    got = others[0].result()
    monkeypatch.undo()
    if got.status_code == 200:
        assert _still_works(app, bank, got.get_json()) == []
    else:
        assert got.status_code == 400 and got.get_json()["error"] == "invalid_grant"


def test_a_withdrawal_after_the_code_was_claimed_waits_and_ends_the_tokens(app, client, bank, monkeypatch):
    """The citizen withdraws while the exchange is under way (its code claimed): the claim holds
    the grant's lock, so the withdrawal waits for the exchange, then ends the tokens it issued."""
    who = make_citizen(app)
    code, verifier = get_code(app, app.test_client(), bank, who["account_id"])
    gid = _grant_id(who["account_id"])
    others: list[Competing] = []
    real = grant_classes.AuthorizationCode.authenticate_user
    fire = once(lambda: others.append(Competing(app, _withdraw(who, gid))))

    def then_withdrawn(self: Any, authorization_code: Any) -> Any:
        account = real(self, authorization_code)
        fire()
        return account

    monkeypatch.setattr(grant_classes.AuthorizationCode, "authenticate_user", then_withdrawn)
    got = exchange(client, bank, code, verifier)
    assert others[0].waited, "the withdrawal did not wait for the exchange under way"
    assert others[0].result().status_code == 204
    assert got.status_code == 200, got.get_json()
    assert _still_works(app, bank, got.get_json()) == []


def test_a_withdrawal_during_a_refresh_leaves_no_token_that_works(app, client, bank, tokens_for, monkeypatch):
    """The refresh holds the grant's lock from its claim to its commit: a withdrawal during it
    waits, then ends the tokens it issued (or, were it first, the refresh is refused)."""
    who, tok = tokens_for(bank)
    gid = _grant_id(who["account_id"])
    others: list[Competing] = []
    real = grant_classes.RefreshToken.authenticate_user
    fire = once(lambda: others.append(Competing(app, _withdraw(who, gid))))

    def then_withdrawn(self: Any, refreshed: Any) -> Any:
        account = real(self, refreshed)
        fire()
        return account

    monkeypatch.setattr(grant_classes.RefreshToken, "authenticate_user", then_withdrawn)
    got = _refresh(bank, tok["refresh_token"])(client)
    assert others[0].result().status_code == 204
    if got.status_code == 200:
        assert _still_works(app, bank, got.get_json()) == []
    else:
        assert got.status_code == 400 and got.get_json()["error"] == "invalid_grant", got.get_json()
    assert _still_works(app, bank, tok) == []


def test_a_code_redeemed_after_the_consent_was_narrowed_gets_only_what_is_still_granted(app, client, bank):
    who = make_citizen(app)
    wide, wide_verifier = get_code(
        app, app.test_client(), bank, who["account_id"], "profile.basic applications.read"
    )
    get_code(app, app.test_client(), bank, who["account_id"], "profile.basic")  # the citizen narrows it
    got = exchange(client, bank, wide, wide_verifier)
    assert got.status_code == 200 and got.get_json()["scope"] == "profile.basic"
    bearer = {"Authorization": f"Bearer {got.get_json()['access_token']}"}
    assert client.get("/v1/applications", headers=bearer).status_code == 403
    refreshed = _refresh(bank, got.get_json()["refresh_token"])(client)
    assert refreshed.status_code == 200 and refreshed.get_json()["scope"] == "profile.basic"


def test_a_code_whose_whole_scope_was_withdrawn_since_is_refused(app, client, bank):
    who = make_citizen(app)
    code, verifier = get_code(app, app.test_client(), bank, who["account_id"], "applications.read")
    get_code(app, app.test_client(), bank, who["account_id"], "profile.basic")
    got = exchange(client, bank, code, verifier)
    assert got.status_code == 400 and got.get_json()["error"] == "invalid_grant"


def test_two_consents_to_the_same_app_at_once_both_get_their_code(app, client, bank, monkeypatch):
    """Two tabs: the second consent is given after the first looked for the grant and found none."""
    who = make_citizen(app)

    def consent_in(http: Any, scope: str) -> Any:
        _, challenge = pkce()
        sign_in_browser(http, who["account_id"])
        return consent(http, authorize_params(bank, challenge, scope=scope))

    others: list[Competing] = []
    real = oauth_grants._unrevoked
    fire = once(lambda: others.append(Competing(app, lambda http: consent_in(http, "profile.basic"))))

    def then_other_tab(session: Any, account_id: str, client_id: str) -> OAuthGrant | None:
        grant = real(session, account_id, client_id)
        fire()
        return grant

    monkeypatch.setattr(oauth_grants, "_unrevoked", then_other_tab)
    first = consent_in(client, "profile.basic applications.read")
    second = others[0].result()
    for resp in (first, second):
        assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
        assert "code" in redirect_params(resp)
    session = db.session()
    live = session.scalar(
        select(func.count())
        .select_from(OAuthGrant)
        .where(OAuthGrant.account_id == who["account_id"], OAuthGrant.revoked_at.is_(None))
    )
    db.remove()
    assert live == 1


def test_a_code_exchange_during_a_client_suspension_gives_no_token_that_works(app, client, bank, monkeypatch):
    """The exchange runs after the suspension began and before it ended the client's token
    families: it must wait and be refused, or its tokens be ended with the others."""
    from domain.oauth import clients
    from domain.operators.audit_log import CLI_ACTOR

    who = make_citizen(app)
    code, verifier = get_code(app, app.test_client(), bank, who["account_id"])
    others: list[Competing] = []
    real = oauth_tokens.grant_family_ids
    fire = once(lambda: others.append(Competing(app, lambda http: exchange(http, bank, code, verifier))))

    def then_listed(session: Any, client_id: str) -> list[str]:
        listed = real(session, client_id)
        fire()  # the exchange runs once the families to end are known
        return listed

    monkeypatch.setattr(oauth_tokens, "grant_family_ids", then_listed)
    svc = app.extensions["yiwang"]
    clients.set_status(
        db.session(), actor=CLI_ACTOR, revocations=svc.revocations, client_id=bank["id"], status="suspended"
    )
    db.remove()
    got = others[0].result()
    monkeypatch.undo()
    if got.status_code == 200:
        assert _still_works(app, bank, got.get_json()) == []
    else:
        assert got.status_code in (400, 401), got.get_json()


def test_a_consent_narrowed_during_a_code_exchange_ends_the_tokens_it_issued(app, client, bank, monkeypatch):
    """The citizen narrows the consent while the exchange is under way (its code claimed, its
    family made): the new consent waits for the exchange, then ends the family, so the exchange
    never leaves a working token with the withdrawn scope."""
    who = make_citizen(app)
    code, verifier = get_code(
        app, app.test_client(), bank, who["account_id"], "profile.basic applications.read"
    )
    others: list[Competing] = []
    real = oauth_tokens.lock_live_grant

    def narrow(http: Any) -> str:
        return get_code(app, http, bank, who["account_id"], "profile.basic")[0]

    def narrowed_meanwhile(session: Any, **kw: Any) -> Any:
        others.append(Competing(app, narrow))
        return real(session, **kw)

    monkeypatch.setattr(oauth_tokens, "lock_live_grant", narrowed_meanwhile)
    got = exchange(client, bank, code, verifier)
    monkeypatch.undo()
    assert others[0].waited, "the new consent did not wait for the exchange under way"
    assert others[0].result()
    assert got.status_code == 200, got.get_json()
    assert _still_works(app, bank, got.get_json()) == []


def test_an_exchange_that_fails_after_its_claim_leaves_the_code_usable(app, client, bank, monkeypatch):
    """A server error after the code was claimed: the client retries with the same code, which
    must work, not count as a replay that ends what the code gave."""
    who = make_citizen(app)
    code, verifier = get_code(app, app.test_client(), bank, who["account_id"])
    real = oauth_tokens.issue_for_citizen

    def down_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(oauth_tokens, "issue_for_citizen", real)
        raise RuntimeError("the token store is away")

    monkeypatch.setattr(oauth_tokens, "issue_for_citizen", down_once)
    try:
        failed = exchange(app.test_client(), bank, code, verifier)
        assert failed.status_code == 500
    except RuntimeError:
        pass  # the test app propagates the error
    finally:
        db.remove()
    retried = exchange(client, bank, code, verifier)
    assert retried.status_code == 200, retried.get_json()
    assert _still_works(app, bank, retried.get_json()) == ["access token", "refresh token"]


def test_a_code_presented_with_a_wrong_verifier_is_used_up(app, client, bank):
    """A refused exchange (here a wrong PKCE verifier) uses the code up: no second try with
    another verifier, and the right one afterwards gets nothing either."""
    who = make_citizen(app)
    code, verifier = get_code(app, app.test_client(), bank, who["account_id"])
    wrong = exchange(client, bank, code, verifier[::-1])
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant", wrong.get_json()
    again = exchange(client, bank, code, verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant", again.get_json()


def test_a_refresh_that_fails_after_its_claim_leaves_the_refresh_token_usable(app, client, bank, monkeypatch):
    """A server error after the refresh token was claimed: the client retries with the same
    token, which must work, not count as a reuse that ends the citizen's grant."""
    who = make_citizen(app)
    code, verifier = get_code(app, app.test_client(), bank, who["account_id"])
    first = exchange(client, bank, code, verifier).get_json()
    real = oauth_tokens.issue_for_citizen

    def down_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(oauth_tokens, "issue_for_citizen", real)
        raise RuntimeError("the token store is away")

    monkeypatch.setattr(oauth_tokens, "issue_for_citizen", down_once)
    try:
        failed = _refresh(bank, first["refresh_token"])(app.test_client())
        assert failed.status_code == 500
    except RuntimeError:
        pass  # the test app propagates the error
    finally:
        db.remove()
    retried = _refresh(bank, first["refresh_token"])(client)
    assert retried.status_code == 200, retried.get_json()
    assert _still_works(app, bank, retried.get_json()) == ["access token", "refresh token"]
