"""RFC 9700 at the authorization endpoint: exact redirect URIs, PKCE S256 only, state required."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.oauth.conftest import (
    REDIRECT,
    authorize_params,
    exchange,
    pkce,
    redirect_params,
    register,
    sign_in_browser,
)

MUTATIONS = [
    "https://bank.example.cn/OAuth/callback",  # case of the path
    "https://BANK.example.cn/oauth/callback",  # case of the host
    "HTTPS://bank.example.cn/oauth/callback",  # case of the scheme
    "https://bank.example.cn/oauth/callback/",  # trailing slash
    "https://bank.example.cn/oauth/callback?next=/",  # extra query
    "https://bank.example.cn/oauth/callback#frag",  # fragment
    "https://evil@bank.example.cn/oauth/callback",  # userinfo
    "https://bank.example.cn.evil.com/oauth/callback",  # other host (suffix)
    "https://evil.example.com/oauth/callback",  # other host
    "http://bank.example.cn/oauth/callback",  # http
    "https://bank.example.cn:8443/oauth/callback",  # other port
    "https://bank.example.cn/oauth/callback/../callback",  # dot segments
]


@pytest.mark.parametrize("uri", MUTATIONS)
def test_every_mutation_of_the_registered_redirect_uri_is_refused_on_a_page_never_redirected(
    client, bank, uri
):
    _, challenge = pkce()
    resp = client.get("/oauth/authorize?" + urlencode(authorize_params(bank, challenge, redirect_uri=uri)))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "无法完成授权" in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:5000/callback",  # loopback must be an IP literal (RFC 8252 §8.3)
        "http://127.0.0.1:5000/callback/",
        "http://127.0.0.1:5000/other",
        "https://127.0.0.1:5000/callback",
        "http://127.0.0.2:5000/callback",
        "http://127.0.0.1:5000/callback?x=1",
    ],
)
def test_native_loopback_allows_any_port_and_nothing_else(client, native, uri):
    _, challenge = pkce()
    params = authorize_params(native, challenge, redirect_uri=uri, scope="profile.basic")
    resp = client.get("/oauth/authorize?" + urlencode(params))
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_missing_redirect_uri_is_refused_even_with_one_registered(client, bank):
    _, challenge = pkce()
    resp = client.get("/oauth/authorize?" + urlencode(authorize_params(bank, challenge, redirect_uri=None)))
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_unknown_pending_or_suspended_client_gets_an_error_page(app, client):
    _, challenge = pkce()
    pending = register(app, approve=False)
    for cid in ("nobody", pending["id"]):
        params = authorize_params({"id": cid, "redirect_uri": REDIRECT}, challenge)
        resp = client.get("/oauth/authorize?" + urlencode(params))
        assert resp.status_code == 400 and "Location" not in resp.headers


def _page_detail(resp) -> str:
    """What the error page tells the citizen (its first paragraph)."""
    return re.search(r"<p>(.*?)</p>", resp.get_data(as_text=True), re.S).group(1)


def test_error_pages_speak_plain_chinese_and_never_repeat_the_callers_input(app, client, bank):
    _, challenge = pkce()
    nobody = client.get(
        "/oauth/authorize?"
        + urlencode(authorize_params({"id": "yw_nobody", "redirect_uri": REDIRECT}, challenge))
    )
    assert nobody.status_code == 400 and "Location" not in nobody.headers
    detail = _page_detail(nobody)
    assert "无法识别发起授权的应用" in detail and not re.search(r"[A-Za-z]", detail), detail
    evil = client.get(
        "/oauth/authorize?"
        + urlencode(authorize_params(bank, challenge, redirect_uri="https://evil.example/cb"))
    )
    assert evil.status_code == 400 and "Location" not in evil.headers
    detail = _page_detail(evil)
    assert "回调地址" in detail and not re.search(r"[A-Za-z]", detail), detail
    assert "evil.example" not in evil.get_data(as_text=True)


def test_an_error_code_without_a_sentence_of_its_own_gets_a_generic_chinese_one():
    from api.oauth.pages import CITIZEN_ERROR_OTHER, CITIZEN_ERRORS, citizen_error_text

    assert citizen_error_text("something_new") == CITIZEN_ERROR_OTHER == citizen_error_text(None)
    for code in ("invalid_client", "invalid_request", "unauthorized_client", "invalid_scope",
                 "unsupported_response_type", "access_denied", "server_error"):  # fmt: skip
        assert code in CITIZEN_ERRORS and not re.search(r"[A-Za-z]", citizen_error_text(code))


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),  # no PKCE
        ({"code_challenge_method": "plain"}, "invalid_request"),  # downgrade to plain
        ({"code_challenge_method": None}, "invalid_request"),  # no method means plain
        ({"state": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),  # implicit grant
        ({"scope": "profile.basic admin.everything"}, "invalid_scope"),
        ({"scope": "catalog.read"}, "invalid_scope"),  # the app's own scope, not a citizen's
    ],
)
def test_bad_requests_go_back_to_the_app_with_an_error_and_iss(app, client, bank, citizen, over, error):
    _, challenge = pkce()
    params = authorize_params(bank, challenge, **over)
    sign_in_browser(client, citizen["account_id"])
    got = redirect_params(client.get("/oauth/authorize?" + urlencode(params)))
    assert got["error"] == error and "code" not in got
    assert got["iss"] == app.config["JWT_ISSUER"]


def test_scope_the_client_may_not_ask_for_is_refused(app, client, native, citizen):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])
    params = authorize_params(
        native, challenge, scope="applications.write", redirect_uri="http://127.0.0.1:9/callback"
    )
    assert redirect_params(client.get("/oauth/authorize?" + urlencode(params)))["error"] == "invalid_scope"


def test_token_request_without_verifier_or_with_a_wrong_one_is_refused(app, client, bank, citizen):
    from tests.oauth.conftest import get_code

    code, verifier = get_code(app, client, bank, citizen["account_id"])
    missing = exchange(client, bank, code, "")
    assert missing.status_code == 400 and missing.get_json()["error"] == "invalid_request"
    code2, _ = get_code(app, client, bank, citizen["account_id"])
    wrong = exchange(client, bank, code2, pkce()[0])
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"


def test_consent_form_without_the_page_csrf_token_is_refused(client, bank, citizen):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])
    data = {**authorize_params(bank, challenge), "decision": "allow", "csrf": "forged"}
    resp = client.post("/oauth/authorize", data=data)
    assert resp.status_code == 403 and "Location" not in resp.headers


def test_consent_page_is_not_framable_and_loads_nothing_from_elsewhere(client, bank, citizen):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])
    resp = client.get("/oauth/authorize?" + urlencode(authorize_params(bank, challenge)))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "便民银行" in html and "查看办件" in html
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html.replace("https://bank.example.cn/oauth/callback", "")
