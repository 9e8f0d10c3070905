"""Authorization code + PKCE: consent, issue, the token's shape, and what the app can then do."""

from __future__ import annotations

import jwt

from tests.oauth.conftest import (
    authorize_params,
    consent,
    exchange,
    get_code,
    pkce,
    redirect_params,
    sign_in_browser,
)


def test_consent_issues_a_code_with_state_and_iss_and_the_code_buys_an_rfc9068_token(
    app, client, bank, citizen
):
    verifier, challenge = pkce()
    params = authorize_params(bank, challenge)
    sign_in_browser(client, citizen["account_id"])
    got = redirect_params(consent(client, params))
    assert got["state"] == params["state"]
    assert got["iss"] == app.config["JWT_ISSUER"]
    resp = exchange(client, bank, got["code"], verifier)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["scope"] == "profile.basic applications.read"
    assert body["refresh_token"].startswith("ort_") and body["expires_in"] == 600
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    assert claims["client_id"] == bank["id"] and claims["sub"] == citizen["account_id"]
    assert claims["aud"] == app.config["JWT_AUDIENCE"] and claims["iss"] == app.config["JWT_ISSUER"]
    assert claims["scope"] == "profile.basic applications.read" and claims["jti"]


def test_the_third_party_token_reads_applications_but_not_what_it_was_not_granted(
    app, client, bank, tokens_for
):
    who, tok = tokens_for(bank, scope="applications.read")
    auth = {"Authorization": f"Bearer {tok['access_token']}"}
    assert client.get("/v1/applications", headers=auth).status_code == 200
    denied = client.post("/v1/applications", json={"service_code": "x"}, headers=auth)
    assert denied.status_code == 403
    assert denied.get_json()["error"]["code"] == "oauth.insufficient_scope"
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    # Endpoints no scope opens are closed to apps altogether: sessions, phone, grants, identity.
    for path in ("/v1/me/sessions", "/v1/me/phone", "/v1/me/grants", "/v1/identity", "/v1/me/data-access"):
        resp = client.get(path, headers=auth)
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "oauth.endpoint_not_allowed", (
            path
        )


def test_deny_returns_access_denied_to_the_app(app, client, bank, citizen):
    _, challenge = pkce()
    params = authorize_params(bank, challenge)
    sign_in_browser(client, citizen["account_id"])
    got = redirect_params(consent(client, params, decision="deny"))
    assert got["error"] == "access_denied" and got["state"] == params["state"] and "code" not in got
    assert got["iss"] == app.config["JWT_ISSUER"]


def test_public_native_client_uses_any_loopback_port_and_no_secret(app, client, native, citizen):
    verifier, challenge = pkce()
    uri = "http://127.0.0.1:53127/callback"
    sign_in_browser(client, citizen["account_id"])
    got = redirect_params(
        consent(client, authorize_params(native, challenge, redirect_uri=uri, scope="profile.basic"))
    )
    resp = exchange(client, {**native, "redirect_uri": uri}, got["code"], verifier)
    assert resp.status_code == 200, resp.get_json()


def test_a_code_from_another_client_is_refused(app, client, bank, native, citizen):
    code, verifier = get_code(app, client, bank, citizen["account_id"])
    resp = exchange(client, {**native, "redirect_uri": bank["redirect_uri"]}, code, verifier)
    assert resp.status_code in (400, 401) and resp.get_json()["error"] in ("invalid_grant", "invalid_client")
