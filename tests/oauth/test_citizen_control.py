"""The citizen's side: grants listed and withdrawn, sensitive scopes ticked separately and gated
by identity level, and what the non-application scopes give an app."""

from __future__ import annotations

from datetime import datetime

from integrations.realname.people import DEMO_PEOPLE
from tests.api.v1.applications.conftest import verified
from tests.oauth.conftest import authorize_params, consent, exchange, pkce, redirect_params, sign_in_browser


def _auth(tok: dict) -> dict:
    return {"Authorization": f"Bearer {tok['access_token']}"}


def test_grants_list_what_each_app_may_do_and_when_it_was_last_used(client, bank, tokens_for, clock):
    who, tok = tokens_for(bank, scope="profile.basic applications.read")
    client.get("/v1/applications", headers=_auth(tok))
    grants = client.get("/v1/me/grants", headers=who["headers"]).get_json()
    assert len(grants) == 1
    g = grants[0]
    assert g["client"] == {"id": bank["id"], "name": "便民银行", "contact": "95588"}
    assert [s["scope"] for s in g["scopes"]] == ["profile.basic", "applications.read"]
    assert g["scopes"][0]["reveals"].startswith("您的姓名")
    assert g["last_used_at"] is not None
    days = (datetime.fromisoformat(g["expires_at"]) - datetime.fromisoformat(g["granted_at"])).days
    assert days == 90


def test_withdrawing_a_grant_ends_every_token_of_it_at_once(client, bank, tokens_for):
    who, tok = tokens_for(bank)
    _, second = tokens_for(bank, citizen=who)  # a second login of the same app: same grant
    grants = client.get("/v1/me/grants", headers=who["headers"]).get_json()
    assert len(grants) == 1
    assert client.delete(f"/v1/me/grants/{grants[0]['id']}", headers=who["headers"]).status_code == 204
    for t in (tok, second):
        assert client.get("/v1/applications", headers=_auth(t)).status_code == 401
        refreshed = client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": t["refresh_token"]},
            auth=(bank["id"], bank["secret"]),
        )
        assert refreshed.status_code == 400
    assert client.get("/v1/me/grants", headers=who["headers"]).get_json() == []


def test_a_citizen_cannot_withdraw_someone_elses_grant(client, bank, tokens_for):
    owner, _ = tokens_for(bank)
    stranger, _ = tokens_for(bank)
    gid = client.get("/v1/me/grants", headers=owner["headers"]).get_json()[0]["id"]
    resp = client.delete(f"/v1/me/grants/{gid}", headers=stranger["headers"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "oauth.grant_not_found"
    assert len(client.get("/v1/me/grants", headers=owner["headers"]).get_json()) == 1


def test_sensitive_scopes_are_granted_only_when_ticked(app, client, bank, seeded):
    zhang = verified(app, 0)
    verifier, challenge = pkce()
    sign_in_browser(client, zhang["account_id"])
    params = authorize_params(bank, challenge, scope="profile.basic identity.match")
    page = client.get("/oauth/authorize?" + "&".join(f"{k}={v}" for k, v in params.items()))
    assert "敏感权限" in page.get_data(as_text=True)
    got = redirect_params(consent(client, params))  # not ticked
    body = exchange(client, bank, got["code"], verifier).get_json()
    assert body["scope"] == "profile.basic"


def test_sensitive_scope_needs_the_identity_level_it_names(client, bank, citizen):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])  # L1: phone only
    params = authorize_params(bank, challenge, scope="profile.basic identity.match")
    resp = consent(client, params, sensitive=["identity.match"])
    assert resp.status_code == 200  # the consent page again, saying why
    assert "实名认证" in resp.get_data(as_text=True)


def test_basic_profile_is_masked_and_identity_match_says_only_yes_or_no(
    app, client, bank, seeded, tokens_for
):
    zhang = verified(app, 0)
    _, tok = tokens_for(
        bank, scope="profile.basic identity.match", citizen=zhang, sensitive=["identity.match"]
    )
    profile = client.get("/v1/me/basic-profile", headers=_auth(tok)).get_json()
    assert (
        profile["identity_level"] == "L3"
        and profile["name"].endswith("*")
        and zhang["name"] not in profile["name"]
    )
    yes = client.post(
        "/v1/me/identity-match",
        json={"name": zhang["name"], "id_number": zhang["id_number"]},
        headers=_auth(tok),
    )
    assert yes.status_code == 200 and yes.get_json() == {"match": True}
    someone_else = DEMO_PEOPLE[1][1]  # a valid number, not hers
    no = client.post(
        "/v1/me/identity-match", json={"name": zhang["name"], "id_number": someone_else}, headers=_auth(tok)
    )
    assert no.status_code == 200 and no.get_json() == {"match": False}
    bad = client.post(
        "/v1/me/identity-match", json={"name": zhang["name"], "id_number": "123"}, headers=_auth(tok)
    )
    assert bad.status_code == 422  # malformed: a clear error, not a "no"
    assert zhang["id_number"] not in yes.get_data(as_text=True)


def test_identity_match_reads_a_name_typed_with_spaces_or_another_dot_as_the_verified_one(
    app, client, bank, seeded, tokens_for
):
    mehmet = verified(app, 3)  # 买买提·艾力
    _, tok = tokens_for(bank, scope="identity.match", citizen=mehmet, sensitive=["identity.match"])
    for typed in ("买买提.艾力", "买买提 • 艾力", "买买提\u3000・\u3000艾力"):
        resp = client.post(
            "/v1/me/identity-match",
            json={"name": typed, "id_number": mehmet["id_number"]},
            headers=_auth(tok),
        )
        assert resp.status_code == 200 and resp.get_json() == {"match": True}, (typed, resp.get_json())
    other = client.post(
        "/v1/me/identity-match",
        json={"name": "买买提·艾尔", "id_number": mehmet["id_number"]},
        headers=_auth(tok),
    )
    assert other.status_code == 200 and other.get_json() == {"match": False}


def test_identity_match_is_rate_limited_per_app_and_citizen(app, client, bank, seeded, tokens_for):
    zhang = verified(app, 0)
    _, tok = tokens_for(bank, scope="identity.match", citizen=zhang, sensitive=["identity.match"])
    ask = {"name": zhang["name"], "id_number": zhang["id_number"]}
    codes = [
        client.post("/v1/me/identity-match", json=ask, headers=_auth(tok)).status_code for _ in range(11)
    ]
    assert codes[:10] == [200] * 10 and codes[10] == 429


def test_a_malformed_identity_question_does_not_use_up_the_apps_hourly_turns(
    app, client, bank, seeded, tokens_for
):
    """An app whose form sent an ID number with a typo twelve times still gets its ten answers."""
    zhang = verified(app, 0)
    _, tok = tokens_for(bank, scope="identity.match", citizen=zhang, sensitive=["identity.match"])
    typo = {"name": zhang["name"], "id_number": zhang["id_number"][:-1]}
    assert {
        client.post("/v1/me/identity-match", json=typo, headers=_auth(tok)).status_code for _ in range(12)
    } == {422}
    ask = {"name": zhang["name"], "id_number": zhang["id_number"]}
    codes = [
        client.post("/v1/me/identity-match", json=ask, headers=_auth(tok)).status_code for _ in range(11)
    ]
    assert codes[:10] == [200] * 10 and codes[10] == 429


def test_identity_match_answers_no_only_a_few_times_a_day(app, client, bank, seeded, tokens_for, clock):
    """An app that knows a citizen's region and birth date could try the ~500 remaining sequence
    numbers at its hourly allowance in two days; after five "no"s in a day it waits a day."""
    zhang = verified(app, 0)
    _, tok = tokens_for(bank, scope="identity.match", citizen=zhang, sensitive=["identity.match"])
    from domain.identity.documents import check_character

    head = zhang["id_number"][:14]  # her region and birth date; the sequence number is guessed
    sequences = [f"{n:03d}" for n in range(100, 120) if f"{n:03d}" != zhang["id_number"][14:17]][:5]
    guesses = [head + seq + check_character(head + seq) for seq in sequences]  # valid, none hers
    for guess in guesses:
        no = client.post("/v1/me/identity-match", json={"name": zhang["name"], "id_number": guess},
                         headers=_auth(tok))  # fmt: skip
        assert no.status_code == 200 and no.get_json() == {"match": False}
    right = {"name": zhang["name"], "id_number": zhang["id_number"]}
    stopped = client.post("/v1/me/identity-match", json=right, headers=_auth(tok))
    assert (
        stopped.status_code == 429
        and stopped.get_json()["error"]["details"]["scope"] == "oauth-identity-mismatch"
    )
    assert 0 < int(stopped.headers["Retry-After"]) <= 86400
    clock.advance(days=1, seconds=1)
    _, fresh_tok = tokens_for(bank, scope="identity.match", citizen=zhang, sensitive=["identity.match"])
    again = client.post("/v1/me/identity-match", json=right, headers=_auth(fresh_tok))
    assert again.status_code == 200 and again.get_json() == {"match": True}


def test_an_app_posts_to_the_inbox_once_per_message_id(client, bank, tokens_for):
    who, tok = tokens_for(bank, scope="notifications.send")
    note = {"message_id": "m-1", "title": "水费账单", "body": "本月水费 36.5 元"}
    first = client.post("/v1/notifications", json=note, headers=_auth(tok))
    assert first.status_code == 202 and first.get_json()["duplicate"] is False
    again = client.post("/v1/notifications", json=note, headers=_auth(tok))
    assert again.get_json()["duplicate"] is True
    inbox = client.get("/v1/notifications", headers=who["headers"]).get_json()["items"]
    assert len(inbox) == 1 and "便民银行" in inbox[0]["title"] and "36.5" in inbox[0]["body"]
    citizen_self = client.post("/v1/notifications", json=note, headers=who["headers"])
    assert citizen_self.status_code == 403


def test_an_app_notice_the_citizen_could_not_read_is_refused_and_text_is_stored_trimmed(
    client, bank, tokens_for
):
    who, tok = tokens_for(bank, scope="notifications.send")
    for field in ("title", "body"):
        for blank in (" ", "\u3000\n", "\u202e\u200b"):
            note = {
                "message_id": f"blank-{field}",
                "title": "水费账单",
                "body": "本月水费 36.5 元",
                field: blank,
            }
            resp = client.post("/v1/notifications", json=note, headers=_auth(tok))
            assert resp.status_code == 422, (field, blank, resp.get_json())
            assert set(resp.get_json()["error"]["fields"]) == {field}
    assert client.get("/v1/notifications", headers=who["headers"]).get_json()["items"] == []
    note = {"message_id": "m-2", "title": "  水费账单 ", "body": "\n本月水费 36.5 元  "}
    assert client.post("/v1/notifications", json=note, headers=_auth(tok)).status_code == 202
    from core.db import db
    from notifications.models import Notification

    db.session.remove()
    stored = db.session.query(Notification).filter_by(account_id=who["account_id"]).one().params
    assert (stored["title"], stored["body"]) == ("水费账单", "本月水费 36.5 元")


def test_an_expired_grant_is_closed_and_a_new_consent_makes_a_new_one(app, client, bank, tokens_for, clock):
    who, tok = tokens_for(bank)
    old = client.get("/v1/me/grants", headers=who["headers"]).get_json()[0]["id"]
    clock.advance(91 * 86400)
    who_again = make_citizen_session(app, who)
    assert client.get("/v1/me/grants", headers=who_again["headers"]).get_json() == []
    _, fresh = tokens_for(bank, citizen=who_again)
    grants = client.get("/v1/me/grants", headers=who_again["headers"]).get_json()
    assert len(grants) == 1 and grants[0]["id"] != old
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        auth=(bank["id"], bank["secret"]),
    )
    assert refreshed.status_code == 400  # the old grant's tokens did not come back to life


def test_the_database_holds_one_live_grant_per_citizen_and_app(app, bank, tokens_for):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from core import clock as clock_mod
    from core.db import db
    from domain.oauth.models import OAuthGrant

    who, _ = tokens_for(bank)
    session = db.session()
    now = clock_mod.now()
    session.add(
        OAuthGrant(
            account_id=who["account_id"],
            client_id=bank["id"],
            scopes="profile.basic",
            consent_version="x",
            granted_at=now,
            expires_at=now,
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def make_citizen_session(app, who: dict) -> dict:
    """A new login of the same citizen (the old session's tokens have long expired)."""
    from core.db import db
    from domain.accounts.models import Account
    from domain.auth import sessions

    svc = app.extensions["yiwang"]
    session = db.session()
    pair = sessions.start_session(
        session,
        tokens=svc.tokens,
        policy=svc.citizen_policy,
        account=session.get(Account, who["account_id"]),
        channel="app",
        device_label="t",
    )
    return who | {
        "headers": {"Authorization": f"Bearer {pair.access_token}"},
        "access_token": pair.access_token,
    }


def test_a_withdrawn_grant_stays_withdrawn_after_redis_is_flushed(app, client, bank, tokens_for, db_session):
    from core.redis import get_redis

    who, tok = tokens_for(bank)
    gid = client.get("/v1/me/grants", headers=who["headers"]).get_json()[0]["id"]
    client.delete(f"/v1/me/grants/{gid}", headers=who["headers"])
    get_redis().flushdb()
    assert app.extensions["yiwang"].revocations.rebuild(db_session) >= 1  # the sweeper does this each pass
    resp = client.get("/v1/applications", headers=_auth(tok))
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "auth.session_revoked"


def test_an_access_token_an_app_revoked_stays_revoked_after_redis_is_flushed(
    app, client, bank, tokens_for, db_session
):
    from sqlalchemy import select

    from core.audit import AuditEvent
    from core.redis import get_redis
    from tests.oauth.conftest import basic

    _, tok = tokens_for(bank)
    done = client.post("/oauth/revoke", data={"token": tok["access_token"]}, headers=basic(bank))
    assert done.status_code == 200
    assert client.get("/v1/applications", headers=_auth(tok)).status_code == 401
    recorded = db_session.scalars(
        select(AuditEvent).where(AuditEvent.action == "oauth.access_token_revoked")
    ).one()
    assert recorded.actor_id == bank["id"] and tok["access_token"] not in str(recorded.details)
    get_redis().flushdb()
    assert app.extensions["yiwang"].revocations.rebuild(db_session) >= 1  # the sweeper does this each pass
    resp = client.get("/v1/applications", headers=_auth(tok))
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_consenting_to_nothing_shows_the_consent_page_again(client, bank, citizen):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])
    resp = consent(client, authorize_params(bank, challenge, scope="identity.match"))  # sensitive, not ticked
    assert resp.status_code == 200 and "您没有同意任何授权内容" in resp.get_data(as_text=True)
    assert client.get("/v1/me/grants", headers=citizen["headers"]).get_json() == []


def test_consenting_to_less_ends_the_tokens_that_carried_more_at_once(client, bank, tokens_for):
    who, wide = tokens_for(bank, scope="profile.basic applications.read")
    assert client.get("/v1/applications", headers=_auth(wide)).status_code == 200
    # The citizen authorises the app again, this time for their basic profile only.
    _, narrow = tokens_for(bank, scope="profile.basic", citizen=who)
    assert client.get("/v1/applications", headers=_auth(wide)).status_code == 401  # not in 10 minutes: now
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": wide["refresh_token"]},
        auth=(bank["id"], bank["secret"]),
    )
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    assert client.get("/v1/applications", headers=_auth(narrow)).status_code == 403
    assert client.get("/v1/me/basic-profile", headers=_auth(narrow)).status_code == 200
    # Consenting to the same again (another phone of the citizen, say) ends nothing.
    _, again = tokens_for(bank, scope="profile.basic", citizen=who)
    assert client.get("/v1/me/basic-profile", headers=_auth(narrow)).status_code == 200
    assert client.get("/v1/me/basic-profile", headers=_auth(again)).status_code == 200
