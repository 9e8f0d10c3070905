"""Signing in on the OAuth pages: an SMS code, or a QR code approved on a phone already signed in."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
import pytest

from tests.api.v1.test_sms_login import code_on_phone, deliver
from tests.oauth.conftest import (
    authorize_params,
    hidden_fields,
    pkce,
    redirect_params,
    register,
    sign_in_browser,
)

PHONE = "13912340077"


@pytest.fixture
def sim(sms_sim):
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


def _login_page(client, bank, **over):
    _, challenge = pkce()
    params = authorize_params(bank, challenge, **over)
    page = client.get("/oauth/authorize?" + urlencode(params))
    assert page.status_code == 200 and "请先登录一网通办" in page.get_data(as_text=True)
    assert "HttpOnly" in page.headers["Set-Cookie"] and "SameSite=Lax" in page.headers["Set-Cookie"]
    return params, hidden_fields(page.get_data(as_text=True))


def test_sms_code_signs_the_browser_in_and_leads_to_consent(client, bank, sim):
    params, form = _login_page(client, bank)
    before = client.get_cookie("yw_oauth", path="/oauth").value
    sent = client.post("/oauth/login/sms/send", data={**form, "phone": PHONE})
    assert sent.status_code == 200 and "验证码已发送至 139****0077" in sent.get_data(as_text=True)
    deliver()
    wrong = client.post("/oauth/login/sms", data={**form, "phone": PHONE, "code": "000000"})
    assert wrong.status_code == 400 and "验证码错误" in wrong.get_data(as_text=True)
    done = client.post("/oauth/login/sms", data={**form, "phone": PHONE, "code": code_on_phone(sim, PHONE)})
    assert done.status_code == 303 and done.headers["Location"].startswith("/oauth/authorize?")
    assert client.get_cookie("yw_oauth", path="/oauth").value != before  # a new value after sign-in
    consent = client.get(done.headers["Location"])
    html = consent.get_data(as_text=True)
    assert consent.status_code == 200 and "同意授权" in html and "139****0077" in html


def test_sign_in_forms_need_the_pages_csrf_token(client, bank, sim):
    params, form = _login_page(client, bank)
    forged = client.post("/oauth/login/sms/send", data={**form, "csrf": "forged", "phone": PHONE})
    assert forged.status_code == 403


def test_switching_account_needs_the_pages_csrf_token(client, bank, citizen):
    """ "Not me, switch account" signs this browser out; a form on another site must not."""
    sign_in_browser(client, citizen["account_id"])
    _, challenge = pkce()
    page = client.get("/oauth/authorize?" + urlencode(authorize_params(bank, challenge)))
    assert "同意授权" in page.get_data(as_text=True)
    form = hidden_fields(page.get_data(as_text=True))

    forged = client.post("/oauth/logout", data={**form, "csrf": "forged"})
    assert forged.status_code == 403 and "页面已过期" in forged.get_data(as_text=True)
    assert "yw_oauth" not in forged.headers.get("Set-Cookie", "")
    assert "同意授权" in client.get(
        "/oauth/authorize?" + urlencode(authorize_params(bank, challenge))
    ).get_data(as_text=True)  # still signed in

    done = client.post("/oauth/logout", data=form)
    assert done.status_code == 303 and done.headers["Location"].startswith("/oauth/authorize?")
    login = client.get(done.headers["Location"])
    assert "请先登录一网通办" in login.get_data(as_text=True)  # signed out: the sign-in page


def test_qr_sign_in_is_approved_on_the_phone_and_taken_by_that_browser_only(app, client, bank, citizen):
    params, form = _login_page(client, bank)
    qr = client.post("/oauth/login/qr", data=form)
    html = qr.get_data(as_text=True)
    assert qr.status_code == 200 and "<svg" in html
    request_id = re.search(r"/oauth/login/qr/([A-Za-z0-9_-]+)", html).group(1)
    assert client.get(f"/oauth/login/qr/{request_id}").get_json() == {"status": "pending"}
    shown = client.get(f"/v1/oauth-login-requests/{request_id}", headers=citizen["headers"]).get_json()
    assert shown["client_name"] == "便民银行" and [s["scope"] for s in shown["scopes"]] == [
        "profile.basic",
        "applications.read",
    ]
    stranger = app.test_client()  # another browser, polling the same id
    ok = client.post(f"/v1/oauth-login-requests/{request_id}/approve", headers=citizen["headers"])
    assert ok.status_code == 200 and ok.get_json()["status"] == "approved"
    assert stranger.get(f"/oauth/login/qr/{request_id}").get_json() == {"status": "expired"}
    assert client.get(f"/oauth/login/qr/{request_id}").get_json() == {"status": "approved"}
    assert client.get(f"/oauth/login/qr/{request_id}").get_json() == {"status": "expired"}  # taken once
    consent = client.get("/oauth/authorize?" + urlencode(params))
    assert "同意授权" in consent.get_data(as_text=True)


def test_a_qr_request_answered_once_and_only_by_a_first_party_token(app, client, bank, citizen, tokens_for):
    _, form = _login_page(client, bank)
    html = client.post("/oauth/login/qr", data=form).get_data(as_text=True)
    request_id = re.search(r"/oauth/login/qr/([A-Za-z0-9_-]+)", html).group(1)
    _, tok = tokens_for(bank)
    by_app = client.post(
        f"/v1/oauth-login-requests/{request_id}/approve",
        headers={"Authorization": f"Bearer {tok['access_token']}"},
    )
    assert by_app.status_code == 403
    assert (
        client.post(f"/v1/oauth-login-requests/{request_id}/deny", headers=citizen["headers"]).status_code
        == 200
    )
    again = client.post(f"/v1/oauth-login-requests/{request_id}/approve", headers=citizen["headers"])
    assert again.status_code == 404
    assert client.get(f"/oauth/login/qr/{request_id}").get_json() == {"status": "denied"}


def test_qr_sign_in_is_refused_for_an_unapproved_app_as_the_authorization_page_refuses_it(app, client, bank):
    """The page's own CSRF token, but another client: a pending one, never approved."""
    _, form = _login_page(client, bank)
    pending = register(app, approve=False, name="未审核应用", scopes=["profile.basic"])
    forged = {**form, "client_id": pending["id"], "scope": "applications.write identity.match"}
    resp = client.post("/oauth/login/qr", data=forged)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Location" not in resp.headers and "<svg" not in html
    assert "无法完成授权" in html and "未在本平台登记" in html and "未审核应用" not in html
    assert not re.search(r"/oauth/login/qr/[A-Za-z0-9_-]+", html)
    sms = client.post("/oauth/login/sms/send", data={**forged, "phone": PHONE})
    assert sms.status_code == 400 and "未审核应用" not in sms.get_data(as_text=True)


@pytest.mark.parametrize(
    "scope",
    [
        "applications.write identity.match",  # not registered for them
        "profile.basic admin.everything",  # no such scope
        "catalog.read",  # the app's own scope, not a citizen's
        "",
    ],
)
def test_qr_sign_in_checks_the_scopes_as_the_authorization_request_does(app, client, scope):
    basic_only = register(app, name="只读应用", scopes=["profile.basic"])
    _, form = _login_page(
        client, basic_only, scope="profile.basic"
    )  # a request the authorization endpoint accepted
    resp = client.post("/oauth/login/qr", data={**form, "scope": scope})
    assert "<svg" not in resp.get_data(as_text=True)
    got = redirect_params(resp)  # sent back to the app, as the authorization endpoint sends it
    assert got["error"] == "invalid_scope" and got["state"] == form["state"]
