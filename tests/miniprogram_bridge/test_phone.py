"""POST /v1/auth/miniprogram/phone: binding the WeChat-verified phone, merging with an SMS account."""

from domain.accounts.models import DELETED, Account
from tests.conftest import make_citizen

URL = "/v1/auth/miniprogram/phone"


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _mp_login(client, wx, openid):
    resp = client.post(
        "/v1/auth/miniprogram/login", json={"code": wx.login_code(openid), "device_label": "微信"}
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_binds_the_phone_and_shows_it_masked(client, wx):
    user = wx.add_user(phone="13912345678")
    tokens = _mp_login(client, wx, user["openid"])
    resp = client.post(
        URL, json={"code": wx.phone_code(user["openid"])}, headers=_auth(tokens["access_token"])
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"phone": "139****5678", "merged": False, "tokens": None}
    me = client.get("/v1/me", headers=_auth(tokens["access_token"])).get_json()
    assert me["phone"] == "139****5678" and me["channels"] == {"wechat": True, "phone": True}
    assert "13912345678" not in resp.get_data(as_text=True)


def test_reused_phone_code_is_refused(client, wx):
    user = wx.add_user(phone="13912345678")
    tokens = _mp_login(client, wx, user["openid"])
    code = wx.phone_code(user["openid"])
    assert client.post(URL, json={"code": code}, headers=_auth(tokens["access_token"])).status_code == 200
    resp = client.post(URL, json={"code": code}, headers=_auth(tokens["access_token"]))
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "auth.wechat_phone_code_invalid"


def test_merges_into_the_sms_account_of_the_same_phone(app, client, wx, db_session):
    sms = make_citizen(app, phone="13712345678")  # created in the app by SMS login
    user = wx.add_user(phone="13712345678")
    mp = _mp_login(client, wx, user["openid"])
    assert mp["new_account"] is True and mp["account_id"] != sms["account_id"]

    resp = client.post(URL, json={"code": wx.phone_code(user["openid"])}, headers=_auth(mp["access_token"]))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["merged"] is True and body["phone"] == "137****5678"
    assert body["tokens"]["account_id"] == sms["account_id"]

    # The mini-program's old tokens stop working; the new ones belong to the SMS account.
    old = client.get("/v1/me", headers=_auth(mp["access_token"]))
    assert old.status_code == 401 and old.get_json()["error"]["code"] == "auth.session_revoked"
    refresh = client.post("/v1/auth/refresh", json={"refresh_token": mp["refresh_token"]})
    assert refresh.status_code == 401
    me = client.get("/v1/me", headers=_auth(body["tokens"]["access_token"])).get_json()
    assert me["id"] == sms["account_id"] and me["channel"] == "miniprogram"
    assert me["channels"] == {"wechat": True, "phone": True}
    sessions = client.get("/v1/me/sessions", headers=_auth(body["tokens"]["access_token"])).get_json()
    assert {s["device_label"] for s in sessions} == {"微信", "测试手机"}
    # The app session of the SMS account is untouched.
    assert client.get("/v1/me", headers=sms["headers"]).status_code == 200

    db_session.rollback()
    merged = db_session.get(Account, mp["account_id"])
    assert merged.status == DELETED and merged.merged_into_id == sms["account_id"]
    # The next mini-program login lands in the SMS account.
    again = _mp_login(client, wx, user["openid"])
    assert again["account_id"] == sms["account_id"] and again["new_account"] is False


def test_requires_a_wechat_identity_and_keeps_the_code(client, wx, citizen):
    user = wx.add_user(phone="13912345678")
    code = wx.phone_code(user["openid"])
    resp = client.post(URL, json={"code": code}, headers=citizen["headers"])
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "auth.wechat_session_required"
    assert "wxa/business/getuserphonenumber" not in wx.calls()


def test_requires_authentication(client, wx):
    resp = client.post(URL, json={"code": "x"})
    assert resp.status_code == 401


def test_foreign_number_is_refused(client, wx, db_session):
    user = wx.add_user(phone="4155552671", country_code="1")
    tokens = _mp_login(client, wx, user["openid"])
    resp = client.post(
        URL, json={"code": wx.phone_code(user["openid"])}, headers=_auth(tokens["access_token"])
    )
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "account.phone_invalid"
    me = client.get("/v1/me", headers=_auth(tokens["access_token"])).get_json()
    assert me["phone"] is None


def test_phone_of_another_account_conflicts_when_this_one_has_a_phone(app, client, wx):
    make_citizen(app, phone="13612345678")
    user = wx.add_user(phone="13912345678")
    tokens = _mp_login(client, wx, user["openid"])
    headers = _auth(tokens["access_token"])
    assert client.post(URL, json={"code": wx.phone_code(user["openid"])}, headers=headers).status_code == 200
    # The user changes the WeChat phone to a number that already has its own account.
    new_number = wx.add_user(phone="13612345678")  # the same person, now with the other number
    resp = client.post(URL, json={"code": wx.phone_code(new_number["openid"])}, headers=headers)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "account.phone_bound_elsewhere"


def test_retry_with_the_same_idempotency_key_replays_without_calling_wechat_again(client, wx):
    user = wx.add_user(phone="13912345678")
    tokens = _mp_login(client, wx, user["openid"])
    headers = _auth(tokens["access_token"]) | {"Idempotency-Key": "bind-phone-0001"}
    body = {"code": wx.phone_code(user["openid"])}
    first = client.post(URL, json=body, headers=headers)
    second = client.post(URL, json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.get_json() == first.get_json() and second.headers.get("Idempotent-Replayed") == "true"
    assert wx.calls()["wxa/business/getuserphonenumber"] == 1


def test_a_new_number_ends_the_accounts_other_sessions_but_not_this_one(app, client, wx):
    """A citizen who lost the phone with the old number (or whose carrier gave it to someone
    else) changes it in WeChat: sessions opened elsewhere, perhaps by SMS to that number, end."""
    user = wx.add_user(phone="13912345678")
    here = _mp_login(client, wx, user["openid"])
    code = wx.phone_code(user["openid"])
    assert client.post(URL, json={"code": code}, headers=_auth(here["access_token"])).status_code == 200
    elsewhere = _mp_login(client, wx, user["openid"])  # another device of the same account
    assert client.get("/v1/me", headers=_auth(elsewhere["access_token"])).status_code == 200
    same = wx.phone_code(user["openid"])  # binding the same number again changes nothing
    assert client.post(URL, json={"code": same}, headers=_auth(here["access_token"])).status_code == 200
    assert client.get("/v1/me", headers=_auth(elsewhere["access_token"])).status_code == 200

    wx.add_user(openid=user["openid"], phone="13800138000")  # the citizen's new number
    resp = client.post(URL, json={"code": wx.phone_code(user["openid"])}, headers=_auth(here["access_token"]))
    assert resp.status_code == 200 and resp.get_json()["phone"] == "138****8000", resp.get_json()
    gone = client.get("/v1/me", headers=_auth(elsewhere["access_token"]))
    assert gone.status_code == 401 and gone.get_json()["error"]["code"] == "auth.session_revoked"
    assert (
        client.post("/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}).status_code == 401
    )
    me = client.get("/v1/me", headers=_auth(here["access_token"]))
    assert me.status_code == 200 and me.get_json()["phone"] == "138****8000"


def test_a_double_tap_binding_the_same_number_merges_once_and_the_second_is_told_not_a_deadlock(
    app, client, wx, monkeypatch
):
    # Two getPhoneNumber taps give two codes: both binds reach the merge at once. Both accounts
    # are locked FOR UPDATE in id order before anything is judged, so the second waits for the
    # first and finds its account merged away (404), instead of a deadlock (503) or a second fold.
    from domain.accounts import merge
    from tests.concurrency import Competing

    sms = make_citizen(app, phone="13712345679")
    user = wx.add_user(phone="13712345679")
    mp = _mp_login(client, wx, user["openid"])
    second_code = wx.phone_code(user["openid"])
    real = merge.fold_into
    others = []

    def and_tap_again(*args, **kwargs):
        if not others:
            others.append(
                Competing(
                    app,
                    lambda http: http.post(
                        URL, json={"code": second_code}, headers=_auth(mp["access_token"])
                    ),
                )
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(merge, "fold_into", and_tap_again)
    first = client.post(URL, json={"code": wx.phone_code(user["openid"])}, headers=_auth(mp["access_token"]))
    second = others[0].result()
    assert first.status_code == 200 and first.get_json()["merged"] is True, first.get_json()
    assert first.get_json()["tokens"]["account_id"] == sms["account_id"]
    assert second.status_code in (401, 404), second.get_json()  # its session or its account is gone
    assert second.get_json()["error"]["code"] in ("auth.session_revoked", "account.not_found")
