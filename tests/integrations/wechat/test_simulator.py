"""The simulator speaks WeChat's protocol and rejects what WeChat rejects (raw HTTP, no client)."""

import requests

from config import load_config

CFG = load_config("test")
APPID, SECRET = CFG.WECHAT_APPID, CFG.WECHAT_SECRET


def _get(sim, path, **params):
    return requests.get(sim.url + path, params=params, timeout=5).json()


def _post(sim, path, body, **params):
    return requests.post(sim.url + path, json=body, params=params, timeout=5).json()


def _stable(sim, force=False, **over):
    body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force}
    return _post(sim, "cgi-bin/stable_token", body | over)


def test_token_endpoint_checks_credentials_and_grant_type(wechat_sim, wx):
    ok = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    good = _get(wechat_sim, "cgi-bin/token", **ok)
    assert good["expires_in"] == 7200 and len(good["access_token"]) > 100
    assert _get(wechat_sim, "cgi-bin/token", **ok | {"appid": "wxnotours00000000"})["errcode"] == 40013
    assert _get(wechat_sim, "cgi-bin/token", **ok | {"secret": "wrong"})["errcode"] == 40125
    assert _get(wechat_sim, "cgi-bin/token", **ok | {"grant_type": "password"})["errcode"] == 40002
    assert (
        _get(wechat_sim, "cgi-bin/token", grant_type="client_credential", secret=SECRET)["errcode"] == 41002
    )
    assert requests.post(wechat_sim.url + "cgi-bin/token", params=ok, timeout=5).json()["errcode"] == 43001


def test_stable_token_is_stable_until_forced_and_expires(wechat_sim, wx, clock):
    first = _stable(wechat_sim)
    assert _stable(wechat_sim)["access_token"] == first["access_token"]
    assert _stable(wechat_sim, secret="wrong")["errcode"] == 40125
    assert requests.get(wechat_sim.url + "cgi-bin/stable_token", timeout=5).json()["errcode"] == 43002

    forced = _stable(wechat_sim, force=True)
    assert forced["access_token"] != first["access_token"]
    # The forced refresh invalidated the old token at once.
    old = _post(
        wechat_sim, "wxa/business/getuserphonenumber", {"code": "x"}, access_token=first["access_token"]
    )
    assert old["errcode"] == 40001

    clock.advance(7201)
    expired = _post(
        wechat_sim, "wxa/business/getuserphonenumber", {"code": "x"}, access_token=forced["access_token"]
    )
    assert expired["errcode"] == 42001
    assert _stable(wechat_sim)["access_token"] != forced["access_token"]


def test_jscode2session_success_has_no_errcode_and_ignores_access_token(wechat_sim, wx):
    user = wx.add_user(unionid="uTESTunion000000000000000001")
    code = wx.login_code(user["openid"])
    res = _get(wechat_sim, "sns/jscode2session", appid=APPID, secret=SECRET, js_code=code,
               grant_type="authorization_code", access_token="whatever-wechatpy-appends")  # fmt: skip
    assert "errcode" not in res
    assert res["openid"] == user["openid"] and res["unionid"] == user["unionid"]
    assert res["session_key"] == wx.user(user["openid"])["session_key"]


def test_jscode2session_rejects_reused_expired_and_foreign_codes(wechat_sim, wx, clock):
    user = wx.add_user()
    args = {"appid": APPID, "secret": SECRET, "grant_type": "authorization_code"}
    code = wx.login_code(user["openid"])
    assert "openid" in _get(wechat_sim, "sns/jscode2session", js_code=code, **args)
    assert _get(wechat_sim, "sns/jscode2session", js_code=code, **args)["errcode"] == 40029
    assert _get(wechat_sim, "sns/jscode2session", js_code="made-up", **args)["errcode"] == 40029
    stale = wx.login_code(user["openid"])
    clock.advance(301)
    assert _get(wechat_sim, "sns/jscode2session", js_code=stale, **args)["errcode"] == 40029
    assert _get(wechat_sim, "sns/jscode2session", js_code="x", **args | {"secret": "no"})["errcode"] == 40125
    assert _get(wechat_sim, "sns/jscode2session", **args)["errcode"] == 41008
    assert (
        _get(wechat_sim, "sns/jscode2session", js_code="x", **args | {"grant_type": "x"})["errcode"] == 40002
    )


def test_jscode2session_limits_each_user_to_100_calls_a_minute(wechat_sim, wx, clock):
    user = wx.add_user()
    args = {"appid": APPID, "secret": SECRET, "grant_type": "authorization_code"}
    used = wx.login_code(user["openid"])
    for _ in range(100):
        _get(wechat_sim, "sns/jscode2session", js_code=used, **args)
    fresh = wx.login_code(user["openid"])
    assert _get(wechat_sim, "sns/jscode2session", js_code=fresh, **args)["errcode"] == 45011
    clock.advance(61)
    assert "openid" in _get(wechat_sim, "sns/jscode2session", js_code=fresh, **args)


def test_jscode2session_refuses_risky_users(wechat_sim, wx):
    user = wx.add_user()
    wx.flag_risky(user["openid"])
    code = wx.login_code(user["openid"])
    res = _get(wechat_sim, "sns/jscode2session", appid=APPID, secret=SECRET, js_code=code,
               grant_type="authorization_code")  # fmt: skip
    assert res["errcode"] == 40226


def test_phone_number_needs_a_valid_token_and_a_fresh_code(wechat_sim, wx):
    user = wx.add_user(phone="13912345678")
    token = _stable(wechat_sim)["access_token"]
    code = wx.phone_code(user["openid"])
    path = "wxa/business/getuserphonenumber"
    assert _post(wechat_sim, path, {"code": code})["errcode"] == 41001
    assert _post(wechat_sim, path, {"code": code}, access_token="forged")["errcode"] == 40001
    assert _post(wechat_sim, path, {}, access_token=token)["errcode"] == 47001
    res = _post(wechat_sim, path, {"code": code}, access_token=token)
    assert res["errcode"] == 0
    assert res["phone_info"]["purePhoneNumber"] == "13912345678"
    assert res["phone_info"]["countryCode"] == "86"
    assert res["phone_info"]["watermark"]["appid"] == APPID
    assert _post(wechat_sim, path, {"code": code}, access_token=token)["errcode"] == 40029


def test_control_api_refuses_phone_codes_for_users_without_phone(wechat_sim, wx):
    user = wx.add_user()
    res = requests.post(f"{wechat_sim.url}_sim/users/{user['openid']}/phone-code", timeout=5)
    assert res.status_code == 400
    assert requests.post(f"{wechat_sim.url}_sim/users/nobody/login-code", timeout=5).status_code == 404


def test_subscribe_send_validates_and_consumes_one_time_quota(wechat_sim, wx):
    user = wx.add_user()
    tpl = wx.add_template(["thing1", "time2"])["template_id"]
    token = _stable(wechat_sim)["access_token"]
    path = "cgi-bin/message/subscribe/send"
    data = {"thing1": {"value": "居住证办理"}, "time2": {"value": "2024年5月1日 09:30"}}
    body = {"touser": user["openid"], "template_id": tpl, "data": data, "page": "pages/index/index"}

    assert _post(wechat_sim, path, body, access_token=token)["errcode"] == 43101  # never subscribed
    wx.grant(user["openid"], tpl, count=1)
    assert _post(wechat_sim, path, body | {"touser": "onobody"}, access_token=token)["errcode"] == 40003
    assert _post(wechat_sim, path, body | {"template_id": "nope"}, access_token=token)["errcode"] == 40037
    assert _post(wechat_sim, path, body | {"page": "pages/nope"}, access_token=token)["errcode"] == 41030
    too_long = data | {"thing1": {"value": "这是一段超过二十个字符的事项名称用于测试长度限制"}}
    assert _post(wechat_sim, path, body | {"data": too_long}, access_token=token)["errcode"] == 47003
    assert wx.quota(user["openid"], tpl)["count"] == 1  # rejected sends used nothing

    sent = _post(wechat_sim, path, body, access_token=token)
    assert sent["errcode"] == 0 and sent["msgid"]
    assert _post(wechat_sim, path, body, access_token=token)["errcode"] == 43101
    [message] = wx.messages(touser=user["openid"])
    assert message["data"] == data and message["msgid"] == sent["msgid"]


def test_long_term_subscription_is_not_used_up(wechat_sim, wx):
    user = wx.add_user()
    tpl = wx.add_template({"phrase1": "phrase"})["template_id"]
    wx.grant(user["openid"], tpl, count=0, long_term=True)
    token = _stable(wechat_sim)["access_token"]
    body = {"touser": user["openid"], "template_id": tpl, "data": {"phrase1": {"value": "已受理"}}}
    for _ in range(3):
        assert _post(wechat_sim, "cgi-bin/message/subscribe/send", body, access_token=token)["errcode"] == 0
    assert len(wx.messages(touser=user["openid"])) == 3


def test_seeded_demo_user_and_templates_exist_after_reset(wechat_sim, wx):
    from integrations.wechat.simulator import DEMO_OPENID

    assert wx.user(DEMO_OPENID)["phone"] == "13800138000"
    assert wx.quota(DEMO_OPENID, "tpl_application_progress")["long_term"] is True
