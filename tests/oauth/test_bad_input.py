"""Odd input at every OAuth endpoint gets a clear 4xx (or the page says what is wrong), never a 500."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.oauth.conftest import (
    authorize_params,
    basic,
    exchange,
    get_code,
    pkce,
    register,
    sign_in_browser,
)

TOKEN_BODIES = [
    {},
    {"grant_type": ""},
    {"grant_type": "authorization_code"},
    {"grant_type": "authorization_code", "code": "x" * 5000, "code_verifier": "y" * 200},
    {"grant_type": "refresh_token", "refresh_token": "ort_" + "z" * 3000},
    {"grant_type": "client_credentials", "scope": "😀 " * 100},
    {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "a.b.c"},
    {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "not-a-jwt",
    },
]


@pytest.mark.parametrize("body", TOKEN_BODIES)
def test_token_endpoint_answers_odd_bodies_with_an_oauth_error(client, bank, body):
    for headers in ({}, basic(bank), {"Authorization": "Basic !!!"}):
        resp = client.post("/oauth/token", data=body, headers=headers)
        assert 400 <= resp.status_code < 500, (body, headers, resp.status_code)
        assert resp.get_json()["error"]


def test_token_endpoint_with_json_or_binary_bodies(client, bank):
    assert (
        client.post(
            "/oauth/token", json={"grant_type": "client_credentials"}, headers=basic(bank)
        ).status_code
        < 500
    )
    raw = client.post(
        "/oauth/token",
        data=b"\xff\xfe\x00garbage",
        headers=basic(bank) | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= raw.status_code < 500


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_revoke_and_introspect_refuse_odd_bodies(client, bank, path):
    for body in ({}, {"token": ""}, {"token": "x", "token_type_hint": "bogus"}, {"token": "a" * 10000}):
        resp = client.post(path, data=body, headers=basic(bank))
        assert resp.status_code < 500, (path, body)


@pytest.mark.parametrize(
    "over",
    [
        {"client_id": "x" * 500},
        {"client_id": ""},
        {"redirect_uri": "javascript:alert(1)"},
        {"redirect_uri": "https://bank.example.cn/oauth/callback\r\nSet-Cookie: a=b"},
        {"scope": "\x00"},
        {"code_challenge": "short"},
        {"state": "x" * 3000},
    ],
)
def test_authorize_with_odd_parameters_never_fails(client, bank, citizen, over):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])
    resp = client.get("/oauth/authorize?" + urlencode(authorize_params(bank, challenge, **over)))
    assert resp.status_code in (200, 302, 400), resp.status_code
    if resp.status_code == 302:
        assert resp.headers["Location"].startswith("https://bank.example.cn/oauth/callback?")


def test_duplicated_parameters_are_refused(client, bank, citizen):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])
    query = urlencode(authorize_params(bank, challenge)) + "&scope=applications.write"
    resp = client.get("/oauth/authorize?" + query)
    assert resp.status_code in (302, 400)
    if resp.status_code == 302:
        assert "error=invalid_request" in resp.headers["Location"]


def test_consent_form_with_odd_fields(client, bank, citizen):
    _, challenge = pkce()
    sign_in_browser(client, citizen["account_id"])
    form = {**authorize_params(bank, challenge), "csrf": "c" * 22, "decision": "allow"}
    for extra in ({"days": "abc"}, {"days": "99999999999999999999"}, {"sensitive": "applications.write"}):
        resp = client.post("/oauth/authorize", data=form | extra)
        assert resp.status_code in (200, 302), (extra, resp.status_code)


def test_qr_poll_and_phone_side_with_unknown_ids(client, citizen):
    assert client.get("/oauth/login/qr/" + "x" * 300).get_json() == {"status": "expired"}
    resp = client.get("/v1/oauth-login-requests/nope", headers=citizen["headers"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "oauth.login_request_not_found"
    assert client.delete("/v1/me/grants/nope", headers=citizen["headers"]).status_code == 404


def test_a_qr_poll_with_a_nul_byte_is_the_standard_not_found(client):
    # Not a protocol endpoint: the poll documents the project's error body, not RFC 6749's (the
    # answer check at teardown holds the answer to that).
    for lang, message in (("zh", "不存在"), ("en", "no such")):
        resp = client.get("/oauth/login/qr/%00", headers={"Accept-Language": lang})
        assert resp.status_code == 404 and resp.mimetype == "application/json"
        error = resp.get_json()["error"]
        assert error["code"] == "request.not_found" and message in error["message"].lower()


@pytest.mark.parametrize("field", ["grant_type", "scope", "redirect_uri", "code", "token_type_hint"])
def test_control_characters_in_any_form_field_get_a_4xx(client, bank, field):
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        body = {"grant_type": "authorization_code", "code": "c", "token": "t", field: "a\r\nb\x00c"}
        resp = client.post(path, data=body, headers=basic(bank))
        assert resp.status_code < 500, (path, field, resp.status_code)


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_client_credentials_that_are_not_utf8_or_not_an_id_are_invalid_client(client, bank, path):
    """A Basic header of bytes that are not UTF-8, or a client id holding NUL (which PostgreSQL
    text refuses), authenticates nobody: 401 invalid_client, not a 500."""
    body = {"grant_type": "client_credentials", "token": "x"}
    not_utf8 = client.post(path, data=body, headers={"Authorization": "Basic /w=="})  # base64 of 0xff
    assert not_utf8.status_code == 401 and not_utf8.get_json()["error"] == "invalid_client"
    nul_id = client.post(path, data=body | {"client_id": "\x00"})
    assert nul_id.status_code in (400, 401) and nul_id.get_json()["error"] in (
        "invalid_client",
        "invalid_request",
    )
    nul_basic = client.post(path, data=body, headers={"Authorization": "Basic " + _b64("%00:secret")})
    assert nul_basic.status_code == 401 and nul_basic.get_json()["error"] == "invalid_client"
    # Nothing after the scheme but whitespace, Unicode's included (a proxy keeps these).
    for empty in (
        "Basic ",
        "Basic \xa0",
        "Basic \x1c",
        "Basic \x0b",
        "Basic  \x85",
        "Bearer \xa0",
        "Basic\xa0 ",
    ):
        blank = client.post(path, data=body, environ_overrides={"HTTP_AUTHORIZATION": empty})
        assert blank.status_code == 401 and blank.get_json()["error"] == "invalid_client", repr(empty)


@pytest.mark.parametrize("path", ["/oauth/login/sms/send", "/oauth/login/sms", "/oauth/login/qr"])
def test_sign_in_forms_naming_no_possible_client_show_the_expired_page(client, path):
    resp = client.post(path, data={"client_id": "\x00", "phone": "13800138000"})
    assert resp.status_code == 403 and "页面已过期" in resp.get_data(as_text=True)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


# --- a body client_id must name the client that authenticated (RFC 6749 §2.3) ----------------


def _refused_as_contradiction(resp) -> None:
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == "invalid_request"
    assert "access_token" not in resp.get_json() and resp.headers["Cache-Control"] == "no-store"


ODD_CLIENT_IDS = ["a\x00a" + "a" * 30, "x" * 100_000, "other", " ", "%00"]


def test_a_code_exchange_naming_another_client_in_the_body_is_refused(app, client, bank, citizen):
    other = register(app, name="另一家银行")
    code, verifier = get_code(app, app.test_client(), bank, citizen["account_id"])
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": bank["redirect_uri"],
        "code_verifier": verifier,
    }
    for client_id in (other["id"], *ODD_CLIENT_IDS):
        resp = client.post("/oauth/token", data=data | {"client_id": client_id}, headers=basic(bank))
        _refused_as_contradiction(resp)
    # Repeating the authenticated client's own id (RFC 6749 permits it), or sending it empty, is fine:
    # the code was not spent by the refused attempts.
    ok = client.post("/oauth/token", data=data | {"client_id": bank["id"]}, headers=basic(bank))
    assert ok.status_code == 200, ok.get_json()


def test_client_credentials_and_refresh_naming_another_client_are_refused(app, client, bank, tokens_for):
    other = register(app, name="另一家银行")
    for client_id in (other["id"], *ODD_CLIENT_IDS):
        body = {"grant_type": "client_credentials", "scope": "catalog.read", "client_id": client_id}
        _refused_as_contradiction(client.post("/oauth/token", data=body, headers=basic(bank)))
    _, issued = tokens_for(bank)
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    for client_id in (other["id"], *ODD_CLIENT_IDS):
        resp = client.post("/oauth/token", data=refresh | {"client_id": client_id}, headers=basic(bank))
        _refused_as_contradiction(resp)
    same = client.post("/oauth/token", data=refresh | {"client_id": bank["id"]}, headers=basic(bank))
    assert same.status_code == 200, same.get_json()
    empty = {"grant_type": "client_credentials", "scope": "catalog.read", "client_id": ""}
    assert client.post("/oauth/token", data=empty, headers=basic(bank)).status_code == 200


def test_revoke_and_introspect_naming_another_client_are_refused(app, client, bank, tokens_for):
    other = register(app, name="另一家银行")
    _, issued = tokens_for(bank)
    for path in ("/oauth/introspect", "/oauth/revoke"):
        body = {"token": issued["access_token"], "client_id": other["id"]}
        _refused_as_contradiction(client.post(path, data=body, headers=basic(bank)))
    looked = client.post("/oauth/introspect", data={"token": issued["access_token"]}, headers=basic(bank))
    assert looked.get_json()["active"] is True  # the refused revoke revoked nothing


def test_a_client_assertion_with_another_client_id_in_the_body_is_refused(app, client):
    import json
    import time
    import uuid

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "alg": "ES256"}
    signed = register(app, name="签名客户端", auth_method="private_key_jwt", jwks={"keys": [public]})
    other = register(app, name="另一家银行")

    def assertion() -> str:
        now = int(time.time())
        claims = {
            "iss": signed["id"],
            "sub": signed["id"],
            "aud": app.config["PUBLIC_BASE_URL"].rstrip("/") + "/oauth/token",
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})

    form = {
        "grant_type": "client_credentials",
        "scope": "catalog.read",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    _refused_as_contradiction(
        client.post("/oauth/token", data=form | {"client_assertion": assertion(), "client_id": other["id"]})
    )
    ok = client.post("/oauth/token", data=form | {"client_assertion": assertion(), "client_id": signed["id"]})
    assert ok.status_code == 200, ok.get_json()


def test_the_token_exchange_helper_still_works_for_a_public_client(app, client, native, citizen):
    code, verifier = get_code(app, app.test_client(), native, citizen["account_id"])
    assert exchange(client, native, code, verifier).status_code == 200


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_repeated_parameter_at_the_token_endpoint_is_refused_not_read_as_its_first(
    app, client, bank, citizen
):
    # RFC 6749 §3.2: parameters MUST NOT be included more than once. Read as its first, a second
    # `code` is silently dropped, and a proxy reading the last would see another request.
    code, verifier = get_code(app, client, bank, citizen["account_id"])
    pairs = [("grant_type", "authorization_code"), ("code", code), ("code", "other"),
             ("redirect_uri", bank["redirect_uri"]), ("code_verifier", verifier)]  # fmt: skip
    resp = client.post("/oauth/token", data=urlencode(pairs), headers=basic(bank) | FORM)
    assert resp.status_code == 400 and resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["error"] == "invalid_request" and "'code'" in body["error_description"]
    # The same parameter once in the query and once in the body is as repeated.
    once = [p for p in pairs if p != ("code", "other")]
    resp = client.post(f"/oauth/token?code={code}", data=urlencode(once), headers=basic(bank) | FORM)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    # Refused before the code is looked at: sent once, it still gives tokens.
    resp = client.post("/oauth/token", data=urlencode(once), headers=basic(bank) | FORM)
    assert resp.status_code == 200 and resp.get_json()["access_token"]


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_a_repeated_token_at_revocation_and_introspection_is_refused(client, bank, path):
    pairs = [("token", "a" * 40), ("token", "b" * 40)]
    resp = client.post(path, data=urlencode(pairs), headers=basic(bank) | FORM)
    assert resp.status_code == 400
    body = {"error": "invalid_request", "error_description": "Parameter 'token' is repeated."}
    assert resp.get_json() == body


def test_a_repeated_parameter_the_server_does_not_read_is_ignored_and_an_empty_one_is_omitted(
    app, client, bank, citizen
):
    # §3.2: unrecognised parameters are ignored (RFC 8707's `resource` may come several times),
    # and one sent without a value counts as omitted.
    code, verifier = get_code(app, client, bank, citizen["account_id"])
    pairs = [("grant_type", "authorization_code"), ("code", code), ("code", ""),
             ("redirect_uri", bank["redirect_uri"]), ("code_verifier", verifier),
             ("resource", "https://a.example.cn/"), ("resource", "https://b.example.cn/")]  # fmt: skip
    resp = client.post("/oauth/token", data=urlencode(pairs), headers=basic(bank) | FORM)
    assert resp.status_code == 200, resp.get_json()
