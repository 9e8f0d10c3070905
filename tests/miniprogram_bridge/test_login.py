"""POST /v1/auth/miniprogram/login end to end against the WeChat simulator."""

import logging
import socket

import pytest
from sqlalchemy import func, select

from core.redis import get_redis
from domain.accounts.models import WECHAT_OPENID, Account, ChannelIdentity
from domain.accounts.service import SESSION_KEY_PURPOSE
from domain.auth import wechat_login
from domain.auth.models import LoginSession
from integrations.wechat.client import WechatClient

URL = "/v1/auth/miniprogram/login"


def _counts(db_session):
    db_session.rollback()
    return {m.__name__: db_session.scalar(select(func.count()).select_from(m))
            for m in (Account, ChannelIdentity, LoginSession)}  # fmt: skip


def _login(client, wx, openid, **extra):
    return client.post(URL, json={"code": wx.login_code(openid), **extra})


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_first_login_creates_the_account_and_the_next_finds_it(client, wx):
    user = wx.add_user()
    first = _login(client, wx, user["openid"], device_label="iPhone 15")
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["new_account"] is True and body["token_type"] == "Bearer"
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "session_id",
                         "account_id", "new_account"}  # fmt: skip

    me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}).get_json()
    assert me["id"] == body["account_id"] and me["channel"] == "miniprogram"
    assert me["channels"] == {"wechat": True, "phone": False}
    devices = client.get("/v1/me/sessions", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert devices.get_json()[0]["device_label"] == "iPhone 15"

    second = _login(client, wx, user["openid"]).get_json()
    assert second["account_id"] == body["account_id"] and second["new_account"] is False
    assert second["session_id"] != body["session_id"]


def _login_in_second_miniprogram(app, wx, db_session, services, *, unionid):
    """The same person in a second mini-program of our open platform: a new openid, the unionid."""
    wx.add_app("wxsecondapp00000002", "second-secret")
    other = wx.add_user(appid="wxsecondapp00000002", unionid=unionid)
    second_client = WechatClient.from_config(
        dict(app.config) | {"WECHAT_APPID": "wxsecondapp00000002", "WECHAT_SECRET": "second-secret"},
        redis=get_redis(),
    )
    return wechat_login.login_miniprogram(
        db_session, wechat=second_client, encryptor=services.encryptor, tokens=services.tokens,
        policy=services.citizen_policy, code=wx.login_code(other["openid"]), device_label=None,
    )  # fmt: skip


def test_unionid_finds_the_account_from_another_mini_program(app, client, wx, db_session, services):
    user = wx.add_user(unionid="uTESTunion000000000000000003")
    first = _login(client, wx, user["openid"]).get_json()
    login = _login_in_second_miniprogram(app, wx, db_session, services, unionid=user["unionid"])
    assert login.new_account is False and login.tokens.account_id == first["account_id"]
    openids = db_session.scalars(
        select(ChannelIdentity.issuer).where(ChannelIdentity.account_id == first["account_id"],
                                             ChannelIdentity.kind == WECHAT_OPENID)
    ).all()  # fmt: skip
    assert sorted(openids) == sorted([app.config["WECHAT_APPID"], "wxsecondapp00000002"])


def test_an_openid_and_a_unionid_of_two_accounts_sign_in_to_the_openids(
    app, client, wx, db_session, services
):
    """Used our mini-program before WeChat gave a unionid, then another mini-program of the open
    platform (a second account, with the unionid): back in ours, the citizen must land in the
    account of this mini-program's openid, where WeChat face and phone binding work."""
    user = wx.add_user()
    first = _login(client, wx, user["openid"]).get_json()
    elsewhere = _login_in_second_miniprogram(
        app, wx, db_session, services, unionid="uTESTunion000000000000000009"
    )
    db_session.commit()
    assert elsewhere.tokens.account_id != first["account_id"]
    wx.add_user(openid=user["openid"], unionid="uTESTunion000000000000000009")  # WeChat now says so
    back = _login(client, wx, user["openid"])
    assert back.status_code == 200 and back.get_json()["account_id"] == first["account_id"]


def test_session_key_is_stored_encrypted_and_never_returned(client, wx, db_session, services):
    user = wx.add_user()
    resp = _login(client, wx, user["openid"])
    session_key = wx.user(user["openid"])["session_key"]
    assert session_key not in resp.get_data(as_text=True)
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {resp.get_json()['access_token']}"})
    assert session_key not in me.get_data(as_text=True)
    db_session.rollback()
    ident = db_session.scalar(select(ChannelIdentity).where(ChannelIdentity.lookup == user["openid"]))
    assert ident.session_key_enc and session_key not in ident.session_key_enc
    assert services.encryptor.decrypt(ident.session_key_enc, purpose=SESSION_KEY_PURPOSE) == session_key


def test_reused_code_is_refused_and_writes_nothing(client, wx, db_session):
    user = wx.add_user()
    code = wx.login_code(user["openid"])
    assert client.post(URL, json={"code": code}).status_code == 200
    before = _counts(db_session)
    resp = client.post(URL, json={"code": code}, headers={"Accept-Language": "en"})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "auth.wechat_code_invalid" and "request_id" in error
    assert "reopen the mini-program" in error["message"]
    assert _counts(db_session) == before


def test_wechat_rate_limit_becomes_429_with_retry_after(app, client, wx, db_session, wechat_sim):
    import requests

    user = wx.add_user()
    used = wx.login_code(user["openid"])
    params = {"appid": app.config["WECHAT_APPID"], "secret": app.config["WECHAT_SECRET"],
              "js_code": used, "grant_type": "authorization_code"}  # fmt: skip
    for _ in range(100):  # another client of ours burns the user's per-minute WeChat quota
        requests.get(wechat_sim.url + "sns/jscode2session", params=params, timeout=5)
    resp = _login(client, wx, user["openid"])
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "60"
    assert resp.get_json()["error"]["code"] == "rate_limited"
    assert _counts(db_session) == {"Account": 0, "ChannelIdentity": 0, "LoginSession": 0}


def test_risky_user_is_refused_and_nothing_is_written(client, wx, db_session):
    user = wx.add_user()
    wx.flag_risky(user["openid"])
    resp = _login(client, wx, user["openid"])
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "auth.wechat_risky_user"
    assert _counts(db_session) == {"Account": 0, "ChannelIdentity": 0, "LoginSession": 0}


@pytest.mark.parametrize("fault", [{"errcode": -1}, {"http_status": 500}], ids=["busy", "http-500"])
def test_wechat_failure_is_502_and_writes_nothing(client, wx, db_session, fault):
    user = wx.add_user()
    wx.fault("sns/jscode2session", **fault)
    resp = _login(client, wx, user["openid"])
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_unavailable"
    assert _counts(db_session) == {"Account": 0, "ChannelIdentity": 0, "LoginSession": 0}


def test_wechat_down_is_502_and_writes_nothing(app, client, wx, db_session, services, monkeypatch):
    user = wx.add_user()
    down = WechatClient.from_config(
        dict(app.config) | {"WECHAT_API_BASE": _closed_port_url()}, redis=get_redis()
    )
    monkeypatch.setattr(services, "wechat", down)
    resp = _login(client, wx, user["openid"])
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_unavailable"
    assert _counts(db_session) == {"Account": 0, "ChannelIdentity": 0, "LoginSession": 0}


def test_wrong_wechat_secret_is_502_with_an_error_log(
    app, client, wx, db_session, services, monkeypatch, caplog
):
    user = wx.add_user()
    wrong = WechatClient.from_config(
        dict(app.config) | {"WECHAT_SECRET": "not-the-secret"}, redis=get_redis()
    )
    monkeypatch.setattr(services, "wechat", wrong)
    with caplog.at_level(logging.ERROR):
        resp = _login(client, wx, user["openid"])
    assert resp.status_code == 502
    assert any(r.levelno == logging.ERROR and getattr(r, "errcode", None) == 40125 for r in caplog.records)
    assert _counts(db_session) == {"Account": 0, "ChannelIdentity": 0, "LoginSession": 0}


def test_login_is_rate_limited_per_ip(app, client, wx):
    limit = app.config["LOGIN_PER_IP_PER_MINUTE"]
    for _ in range(limit):
        assert client.post(URL, json={"code": "not-a-real-code"}).status_code == 400
    user = wx.add_user()
    resp = _login(client, wx, user["openid"])
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert client.post(URL, json={"code": "x"}, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 400


def test_body_is_validated(client, wx):
    assert client.post(URL, json={}).status_code == 422
    resp = client.post(URL, json={"code": "abc", "session_key": "x"})
    assert resp.status_code == 422 and "session_key" in resp.get_json()["error"]["fields"]


def test_retried_login_with_idempotency_key_gets_the_same_tokens(client, wx):
    user = wx.add_user()
    code = wx.login_code(user["openid"])
    headers = {"Idempotency-Key": "mp-login-retry-0001"}
    first = client.post(URL, json={"code": code}, headers=headers)
    again = client.post(URL, json={"code": code}, headers=headers)  # the response was lost
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # Without the key the same code is spent, as WeChat says.
    assert client.post(URL, json={"code": code}).get_json()["error"]["code"] == "auth.wechat_code_invalid"
