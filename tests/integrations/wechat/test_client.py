"""WechatClient against the simulator: shared tokens, token recovery, failure classification."""

import logging
import socket

import pytest
import requests

from core.errors import PermanentError, RetryableError
from core.redis import get_redis
from integrations.wechat.client import WechatClient
from integrations.wechat.errors import WechatConfigError, WechatPermanentError, WechatRetryableError


def _client(app, **over):
    cfg = dict(app.config) | over
    return WechatClient.from_config(cfg, redis=get_redis())


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_code_to_session_returns_the_users_identity(app, wx):
    user = wx.add_user(unionid="uTESTunion000000000000000002")
    result = _client(app).code_to_session(wx.login_code(user["openid"]))
    assert (result.openid, result.unionid) == (user["openid"], user["unionid"])
    assert result.session_key == wx.user(user["openid"])["session_key"]
    assert result.session_key not in repr(result)


def test_get_phone_number(app, wx):
    user = wx.add_user(phone="13912345678")
    info = _client(app).get_phone_number(wx.phone_code(user["openid"]))
    assert info.pure_phone_number == "13912345678"
    assert info.country_code == "86" and info.watermark_appid == app.config["WECHAT_APPID"]


def test_two_clients_share_one_access_token_through_redis(app, wx):
    first, second = _client(app), _client(app)
    user = wx.add_user(phone="13912345678")
    first.get_phone_number(wx.phone_code(user["openid"]))
    second.get_phone_number(wx.phone_code(user["openid"]))
    calls = wx.calls()
    assert calls["cgi-bin/stable_token"] == 1
    assert "cgi-bin/token" not in calls
    assert calls["wxa/business/getuserphonenumber"] == 2


def test_expired_token_42001_is_refreshed_and_the_call_retried(app, wx):
    client = _client(app)
    user = wx.add_user(phone="13912345678")
    client.get_phone_number(wx.phone_code(user["openid"]))
    assert wx.expire_access_token() == 1
    assert client.get_phone_number(wx.phone_code(user["openid"])).pure_phone_number == "13912345678"
    calls = wx.calls()
    assert calls["cgi-bin/stable_token"] == 2
    assert calls["wxa/business/getuserphonenumber"] == 3  # one refused with 42001, then the retry


def test_token_superseded_elsewhere_40001_is_recovered_without_forcing(app, wx, wechat_sim):
    client = _client(app)
    user = wx.add_user(phone="13912345678")
    client.get_phone_number(wx.phone_code(user["openid"]))
    # Someone else force-refreshes the stable token: ours is now refused with 40001.
    body = {"grant_type": "client_credential", "appid": app.config["WECHAT_APPID"],
            "secret": app.config["WECHAT_SECRET"], "force_refresh": True}  # fmt: skip
    requests.post(wechat_sim.url + "cgi-bin/stable_token", json=body, timeout=5).raise_for_status()
    assert client.get_phone_number(wx.phone_code(user["openid"])).pure_phone_number == "13912345678"
    calls = wx.calls()
    assert calls["wxa/business/getuserphonenumber"] == 3  # one refused with 40001, then the retry
    assert calls["cgi-bin/stable_token:force"] == 1  # only theirs: we did not invalidate theirs


def test_token_refused_although_current_is_force_refreshed_once(app, wx):
    client = _client(app)
    user = wx.add_user(phone="13912345678")
    client.get_phone_number(wx.phone_code(user["openid"]))
    wx.fault("wxa/business/getuserphonenumber", errcode=40001)
    assert client.get_phone_number(wx.phone_code(user["openid"])).pure_phone_number == "13912345678"
    assert wx.calls()["cgi-bin/stable_token:force"] == 1


def test_token_refused_twice_gives_up_as_retryable(app, wx):
    client = _client(app)
    user = wx.add_user(phone="13912345678")
    wx.fault("wxa/business/getuserphonenumber", errcode=40001, times=2)
    with pytest.raises(WechatRetryableError) as caught:
        client.get_phone_number(wx.phone_code(user["openid"]))
    assert caught.value.errcode == 40001 and isinstance(caught.value, RetryableError)
    assert wx.calls()["wxa/business/getuserphonenumber"] == 2


@pytest.mark.parametrize(
    ("over", "errcode"), [({"WECHAT_SECRET": "wrong"}, 40125), ({"WECHAT_APPID": "wxnotours"}, 40013)]
)
def test_wrong_credentials_are_config_errors_and_logged(app, wx, caplog, over, errcode):
    user = wx.add_user(phone="13912345678")
    with caplog.at_level(logging.ERROR, logger="integrations.wechat.client"):
        with pytest.raises(WechatConfigError) as caught:
            _client(app, **over).get_phone_number(wx.phone_code(user["openid"]))
    assert caught.value.errcode == errcode and isinstance(caught.value, PermanentError)
    assert any("configuration" in r.getMessage() for r in caplog.records)


def test_login_code_errors_are_permanent(app, wx):
    with pytest.raises(WechatPermanentError) as caught:
        _client(app).code_to_session("never-issued")
    assert caught.value.errcode == 40029 and not caught.value.retryable


@pytest.mark.parametrize(
    "fault",
    [{"errcode": -1}, {"http_status": 503}, {"errcode": 45011}],
    ids=["busy", "http-503", "rate-limited"],
)
def test_busy_and_server_errors_are_retryable(app, wx, fault):
    user = wx.add_user()
    wx.fault("sns/jscode2session", **fault)
    with pytest.raises(WechatRetryableError):
        _client(app).code_to_session(wx.login_code(user["openid"]))


def test_unreachable_and_timeout_are_retryable(app, wx):
    with pytest.raises(WechatRetryableError):
        _client(app, WECHAT_API_BASE=_closed_port_url()).code_to_session("any")
    user = wx.add_user()
    wx.fault("sns/jscode2session", delay=1.0)
    with pytest.raises(WechatRetryableError) as caught:
        _client(app, WECHAT_TIMEOUT=0.2).code_to_session(wx.login_code(user["openid"]))
    assert caught.value.errmsg == "timeout"


def test_send_subscribe_message(app, wx):
    client = _client(app)
    user = wx.add_user()
    tpl = wx.add_template(["thing1", "character_string2", "phrase3"])["template_id"]
    wx.grant(user["openid"], tpl, count=1)
    data = {"thing1": "居住证办理", "character_string2": "SQ20240501-0001", "phrase3": "已受理"}
    msgid = client.send_subscribe_message(user["openid"], tpl, data, page="pages/applications/detail?id=1",
                                          miniprogram_state="formal")  # fmt: skip
    [message] = wx.messages(touser=user["openid"])
    assert message["msgid"] == msgid
    assert message["data"]["thing1"] == {"value": "居住证办理"}
    assert message["page"] == "pages/applications/detail?id=1"
    with pytest.raises(WechatPermanentError) as caught:
        client.send_subscribe_message(user["openid"], tpl, data)
    assert caught.value.errcode == 43101


def test_send_subscribe_message_rejects_a_thing_over_20_chars(app, wx):
    user = wx.add_user()
    tpl = wx.add_template(["thing1"])["template_id"]
    wx.grant(user["openid"], tpl, count=1)
    with pytest.raises(WechatPermanentError) as caught:
        _client(app).send_subscribe_message(user["openid"], tpl, {"thing1": "字" * 21})
    assert caught.value.errcode == 47003
    assert wx.messages(touser=user["openid"]) == []
    assert wx.quota(user["openid"], tpl)["count"] == 1


def test_token_fetched_by_the_failing_call_itself_is_refreshed(app, wx):
    user = wx.add_user(phone="13912345678")
    wx.fault("wxa/business/getuserphonenumber", errcode=42001)  # the very first call, empty Redis
    assert _client(app).get_phone_number(wx.phone_code(user["openid"])).pure_phone_number == "13912345678"
    assert wx.calls()["cgi-bin/stable_token:force"] == 1
