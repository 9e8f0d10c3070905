"""When the account behind an app's tokens stops being usable (locked, deleted, merged into
another), the app's tokens stop at once with the citizen's own (docs/oauth.md, "When the
account ends")."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from domain.accounts import service as accounts
from domain.accounts.models import DELETED, Account
from domain.auth import sessions
from domain.oauth.models import OAuthGrant, OAuthTokenFamily
from integrations.wechat.sim_control import WechatSimControl
from tests.api.v1.identity.conftest import Sim, complete, mini_citizen, ref_of, start
from tests.conftest import make_citizen
from tests.oauth.conftest import basic

PHONE_URL = "/v1/auth/miniprogram/phone"
APP_VIEWS = ("/v1/applications", "/v1/me/basic-profile")


@pytest.fixture
def wx(wechat_sim) -> WechatSimControl:
    """The WeChat simulator's control API, reset to its seeded state."""
    control = WechatSimControl(wechat_sim.url)
    control.reset()
    return control


def _auth(tok: dict) -> dict:
    return {"Authorization": f"Bearer {tok['access_token']}"}


def _refresh(http, oauth_client: dict, tok: dict):
    data = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    if oauth_client.get("secret"):
        return http.post("/oauth/token", data=data, headers=basic(oauth_client))
    return http.post("/oauth/token", data=data | {"client_id": oauth_client["id"]})


def _works(http, tok: dict) -> bool:
    codes = {http.get(url, headers=_auth(tok)).status_code for url in APP_VIEWS}
    assert codes in ({200}, {401}), codes
    return codes == {200}


def _refused(http, oauth_client: dict, tok: dict) -> bool:
    resp = _refresh(http, oauth_client, tok)
    return resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def _end_account(db_session, services, account_id: str, status: str, reason: str) -> None:
    """What an operator's lock or deletion does: the status and every session, in one commit."""
    accounts.set_status(db_session, account_id=account_id, status=status, actor_id="op-1", reason="fraud")
    sessions.revoke_all(db_session, revocations=services.revocations, account_id=account_id, reason=reason)
    db_session.commit()


def _new_session(app, account_id: str) -> dict:
    from core.db import db

    svc = app.extensions["yiwang"]
    session = db.session()
    pair = sessions.start_session(
        session, tokens=svc.tokens, policy=svc.citizen_policy, account=session.get(Account, account_id),
        channel="app", device_label="t",
    )  # fmt: skip
    return {"account_id": account_id, "headers": {"Authorization": f"Bearer {pair.access_token}"}}


def _grants(db_session, account_id: str) -> list[OAuthGrant]:
    db_session.rollback()  # read what the requests committed
    return list(db_session.scalars(select(OAuthGrant).where(OAuthGrant.account_id == account_id)))


def test_locking_an_account_ends_its_app_tokens_at_once_and_keeps_the_grant(
    app, client, bank, native, tokens_for, db_session, services
):
    who, tok = tokens_for(bank)
    _, second = tokens_for(native, citizen=who)
    assert _works(client, tok) and _works(client, second)
    _end_account(db_session, services, who["account_id"], "locked", "account_locked")
    assert client.get("/v1/me", headers=who["headers"]).status_code == 401
    assert not _works(client, tok) and not _works(client, second)
    assert _refused(client, bank, tok) and _refused(client, native, second)
    kept = _grants(db_session, who["account_id"])
    assert len(kept) == 2 and all(g.revoked_at is None for g in kept)
    families = db_session.scalars(
        select(OAuthTokenFamily).where(OAuthTokenFamily.grant_id.in_([g.id for g in kept]))
    )
    assert {f.revoke_reason for f in families} == {"account_locked"}

    # Unlocked: no old token comes back to life; the grants are still the citizen's to see, and
    # an app acts again once the citizen has consented anew (the same grant is updated).
    accounts.set_status(
        db_session, account_id=who["account_id"], status="active", actor_id="op-1", reason="ok"
    )
    db_session.commit()
    assert not _works(client, tok) and _refused(client, bank, tok)
    again = _new_session(app, who["account_id"])
    listed = client.get("/v1/me/grants", headers=again["headers"]).get_json()
    assert {g["id"] for g in listed} == {g.id for g in kept}
    _, fresh = tokens_for(bank, citizen=again)
    assert _works(client, fresh)
    assert {g["id"] for g in client.get("/v1/me/grants", headers=again["headers"]).get_json()} == {
        g.id for g in kept
    }


def test_deleting_an_account_ends_its_grants_and_every_token_of_them(
    app, client, bank, tokens_for, db_session, services
):
    who, tok = tokens_for(bank)
    _, second = tokens_for(bank, citizen=who)  # a second login of the same app: same grant
    _end_account(db_session, services, who["account_id"], "deleted", "account_deleted")
    for t in (tok, second):
        assert not _works(client, t) and _refused(client, bank, t)
    ended = _grants(db_session, who["account_id"])
    assert [(g.revoke_reason, g.revoked_at is not None) for g in ended] == [("account_deleted", True)]


def test_app_tokens_end_only_when_the_accounts_transaction_commits(
    app, client, bank, tokens_for, db_session, services
):
    who, tok = tokens_for(bank)
    accounts.set_status(db_session, account_id=who["account_id"], status="locked", actor_id="op", reason="x")
    sessions.revoke_all(
        db_session, revocations=services.revocations, account_id=who["account_id"], reason="x"
    )
    db_session.flush()
    db_session.rollback()  # the lock failed: nothing of it shows
    assert _works(client, tok)
    assert _refresh(client, bank, tok).status_code == 200


def _mp_login(http, wx, phone: str) -> tuple[dict, dict]:
    user = wx.add_user(phone=phone)
    body = http.post("/v1/auth/miniprogram/login", json={"code": wx.login_code(user["openid"])}).get_json()
    return user, {"account_id": body["account_id"], "headers": _auth(body)}


def test_a_phone_merge_ends_the_closed_accounts_app_grants_and_keeps_the_survivors(
    app, client, bank, native, tokens_for, wx, db_session
):
    sms = make_citizen(app, phone="13712345678")
    _, kept_tok = tokens_for(bank, citizen=sms)
    survivor_grants = client.get("/v1/me/grants", headers=sms["headers"]).get_json()
    user, mp = _mp_login(client, wx, "13712345678")
    _, mp_bank = tokens_for(bank, citizen=mp)  # both accounts hold a live grant to this app
    _, mp_native = tokens_for(native, citizen=mp)  # an app only the closed account authorised
    assert _works(client, mp_bank) and _works(client, mp_native)

    resp = client.post(PHONE_URL, json={"code": wx.phone_code(user["openid"])}, headers=mp["headers"])
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["merged"] is True and body["tokens"]["account_id"] == sms["account_id"]

    # The closed account's app tokens stop at once; no refresh hands the app the survivor.
    assert not _works(client, mp_bank) and not _works(client, mp_native)
    assert _refused(client, bank, mp_bank) and _refused(client, native, mp_native)
    # The survivor's own grant and tokens are untouched, and it lists only its own consents.
    assert _works(client, kept_tok)
    rotated = _refresh(client, bank, kept_tok)
    assert rotated.status_code == 200 and _works(client, rotated.get_json())
    listed = client.get("/v1/me/grants", headers=_auth(body["tokens"])).get_json()
    assert [(g["id"], g["client"]["id"]) for g in listed] == [
        (g["id"], g["client"]["id"]) for g in survivor_grants
    ]
    closed = _grants(db_session, mp["account_id"])
    assert len(closed) == 2
    assert all(g.revoked_at is not None and g.revoke_reason == "account_merged" for g in closed)
    assert db_session.get(Account, mp["account_id"]).status == DELETED


def test_a_phone_merge_gives_the_survivor_no_grant_it_never_made(
    app, client, bank, tokens_for, wx, db_session
):
    sms = make_citizen(app, phone="13712340000")
    user, mp = _mp_login(client, wx, "13712340000")
    _, mp_tok = tokens_for(bank, citizen=mp)
    resp = client.post(PHONE_URL, json={"code": wx.phone_code(user["openid"])}, headers=mp["headers"])
    assert resp.status_code == 200 and resp.get_json()["merged"] is True
    assert not _works(client, mp_tok)
    assert _refused(client, bank, mp_tok)
    assert client.get("/v1/me/grants", headers=sms["headers"]).get_json() == []
    assert _grants(db_session, sms["account_id"]) == []


def test_a_face_check_merge_ends_the_closed_accounts_app_grants(
    app, client, bank, tokens_for, wx, wechat_sim, faceid_sim, db_session
):
    # The person proved their face in the app; the same face in the mini-program merges.
    face = Sim(faceid_sim)
    face.post("reset")  # shared by the session: whatever another test left on, not this test's doing
    first = make_citizen(app)
    started = start(client, first, "tencent_faceid").get_json()
    face.perform(ref_of(started), "pass")
    done = complete(client, first, started["verification"]["id"]).get_json()
    assert done["identity_level"] == "L3"
    first = first | {"headers": {"Authorization": f"Bearer {done['tokens']['access_token']}"}}
    second = mini_citizen(client, wx)
    _, tok = tokens_for(bank, citizen=second)
    body = start(client, second, "wechat_face").get_json()
    Sim(wechat_sim).perform(ref_of(body), "pass")
    assert complete(client, second, body["verification"]["id"]).get_json()["merged"] is True
    assert not _works(client, tok) and _refused(client, bank, tok)
    assert client.get("/v1/me/grants", headers=first["headers"]).get_json() == []
    assert [g.revoke_reason for g in _grants(db_session, second["account_id"])] == ["account_merged"]


def test_an_identity_taken_by_a_face_ends_the_name_and_number_holders_app_tokens(
    app, client, bank, tokens_for, wx, wechat_sim, idcheck_sim
):
    """Whoever held the identity by name and ID number alone loses it to the person's face, and
    the apps they authorised stop acting for them at once."""
    Sim(idcheck_sim).post("reset")
    holder = make_citizen(app)
    assert start(client, holder, "id_check", consent=None).get_json()["identity_level"] == "L2"
    _, tok = tokens_for(bank, citizen=holder)
    assert _works(client, tok)
    person = mini_citizen(client, wx)
    body = start(client, person, "wechat_face").get_json()
    Sim(wechat_sim).perform(ref_of(body), "pass")
    assert complete(client, person, body["verification"]["id"]).get_json()["identity_level"] == "L3"
    assert not _works(client, tok) and _refused(client, bank, tok)
