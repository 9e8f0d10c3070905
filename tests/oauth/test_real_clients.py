"""Client libraries nobody here wrote, over real HTTP: requests-oauthlib for code + PKCE and
refresh, Authlib's client for revocation and introspection."""

from __future__ import annotations

import re

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from requests_oauthlib import OAuth2Session

from tests.oauth.conftest import REDIRECT, browser_record

SCOPES = ["profile.basic", "applications.read"]


@pytest.fixture(autouse=True)
def _http_localhost(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the live server is plain http on 127.0.0.1


def _browser_consents(live, account_id: str, authorize_url: str) -> str:
    """A signed-in browser opens the URL the client built, agrees, and returns the redirect."""
    browser = requests.Session()
    browser.cookies.set("yw_oauth", browser_record(account_id), domain="127.0.0.1", path="/oauth")
    page = browser.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = browser.post(
        live.url + "oauth/authorize",
        data={**form, "decision": "allow", "days": "30"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    return answer.headers["Location"]


def test_requests_oauthlib_completes_code_with_pkce_and_refresh(app, live, bank, citizen):
    session = OAuth2Session(bank["id"], redirect_uri=REDIRECT, scope=SCOPES, pkce="S256")
    url, state = session.authorization_url(live.url + "oauth/authorize")
    assert "code_challenge=" in url and "code_challenge_method=S256" in url
    callback = _browser_consents(live, citizen["account_id"], url)
    assert f"state={state}" in callback
    token = session.fetch_token(
        live.url + "oauth/token", authorization_response=callback, client_secret=bank["secret"]
    )
    assert token["token_type"] == "Bearer" and set(token["scope"]) == set(SCOPES)
    listed = session.get(live.url + "v1/applications", timeout=10)
    assert listed.status_code == 200 and listed.json()["items"] == []
    refreshed = session.refresh_token(live.url + "oauth/token", auth=(bank["id"], bank["secret"]))
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert session.get(live.url + "v1/applications", timeout=10).status_code == 200


def test_authlib_client_completes_the_flow_and_revokes(app, live, bank, citizen):
    session = AuthlibSession(
        bank["id"],
        bank["secret"],
        scope=" ".join(SCOPES),
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    from authlib.common.security import generate_token

    verifier = generate_token(64)
    url, _ = session.create_authorization_url(live.url + "oauth/authorize", code_verifier=verifier)
    callback = _browser_consents(live, citizen["account_id"], url)
    token = session.fetch_token(
        live.url + "oauth/token", authorization_response=callback, code_verifier=verifier
    )
    assert session.get(live.url + "v1/applications", timeout=10).status_code == 200
    info = session.introspect_token(live.url + "oauth/introspect", token=token["access_token"]).json()
    assert info["active"] is True and info["client_id"] == bank["id"]
    session.revoke_token(
        live.url + "oauth/revoke", token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert session.get(live.url + "v1/applications", timeout=10).status_code == 401
    assert session.introspect_token(live.url + "oauth/introspect", token=token["access_token"]).json() == {
        "active": False
    }


def test_metadata_describes_the_server(app, live):
    meta = requests.get(live.url + ".well-known/oauth-authorization-server", timeout=10).json()
    assert meta["issuer"] == app.config["JWT_ISSUER"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert "implicit" not in meta["grant_types_supported"] and "password" not in meta["grant_types_supported"]
    assert meta["token_endpoint"].endswith("/oauth/token")
