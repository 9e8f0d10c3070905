"""Operators register, approve, suspend apps and rotate their secrets."""

from __future__ import annotations

from domain.oauth import clients
from tests.domain.operators.factories import admin_headers, make_operator
from tests.oauth.conftest import REDIRECT

URL = "/admin/v1/oauth-clients"


def _admin(app, client, roles=("admin",), username="alice"):
    return admin_headers(client, make_operator(app, username=username, roles=roles))


def _body(**over):
    body = {
        "name": "便民银行",
        "contact": "95588",
        "client_type": "confidential",
        "redirect_uris": [REDIRECT],
        "scopes": ["profile.basic", "applications.read", "catalog.read"],
    }
    return body | over


def test_register_then_approve_then_the_app_works_and_suspension_stops_it(app, client):
    h = _admin(app, client)
    made = client.post(URL, json=_body(), headers=h)
    assert made.status_code == 201
    body = made.get_json()
    cid, secret = body["client"]["client_id"], body["client_secret"]
    assert body["client"]["status"] == "pending" and len(secret) >= 40
    assert "client_secret" not in client.get(f"{URL}/{cid}", headers=h).get_json()
    cc = {"grant_type": "client_credentials", "scope": "catalog.read"}
    assert client.post("/oauth/token", data=cc, auth=(cid, secret)).status_code == 401  # pending
    assert client.post(f"{URL}/{cid}/status", json={"status": "approved"}, headers=h).status_code == 200
    assert client.post("/oauth/token", data=cc, auth=(cid, secret)).status_code == 200
    rotated = client.post(f"{URL}/{cid}/secret", headers=h).get_json()["client_secret"]
    assert client.post("/oauth/token", data=cc, auth=(cid, secret)).status_code == 401
    assert client.post("/oauth/token", data=cc, auth=(cid, rotated)).status_code == 200
    client.post(f"{URL}/{cid}/status", json={"status": "suspended"}, headers=h)
    assert client.post("/oauth/token", data=cc, auth=(cid, rotated)).status_code == 401


def test_unsafe_redirect_uris_and_unknown_scopes_are_refused_with_the_field(app, client):
    h = _admin(app, client)
    for uris in (
        ["http://bank.example.cn/cb"],
        ["https://bank.example.cn/cb#x"],
        ["https://u@bank.example.cn/cb"],
        ["https://*.bank.example.cn/cb"],
        ["http://127.0.0.1/cb"],
    ):
        resp = client.post(URL, json=_body(redirect_uris=uris), headers=h)
        assert resp.status_code == 422, uris
    native = client.post(
        URL,
        json=_body(client_type="public", redirect_uris=["http://127.0.0.1/cb", "cn.bank.app:/cb"]),
        headers=h,
    )
    assert native.status_code == 201 and native.get_json()["client_secret"] is None
    assert client.post(URL, json=_body(scopes=["everything"]), headers=h).status_code == 422
    pkj = client.post(URL, json=_body(auth_method="private_key_jwt"), headers=h)
    assert pkj.status_code == 422  # no keys registered


def test_only_admins_manage_apps(app, client):
    h = _admin(app, client, roles=("auditor",), username="bob")
    assert client.get(URL, headers=h).status_code == 403


def test_private_key_jwt_client_authenticates_with_a_signed_assertion_once(app, client):
    import json
    import time
    import uuid

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "alg": "ES256"}
    h = _admin(app, client)
    made = client.post(URL, json=_body(auth_method="private_key_jwt", jwks={"keys": [public]}), headers=h)
    assert made.status_code == 201 and made.get_json()["client_secret"] is None
    cid = made.get_json()["client"]["client_id"]
    client.post(f"{URL}/{cid}/status", json={"status": "approved"}, headers=h)
    now = int(time.time())
    claims = {
        "iss": cid,
        "sub": cid,
        "aud": app.config["PUBLIC_BASE_URL"].rstrip("/") + "/oauth/token",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    assertion = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
    form = {
        "grant_type": "client_credentials",
        "scope": "catalog.read",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    ok = client.post("/oauth/token", data=form)
    assert ok.status_code == 200, ok.get_json()
    replay = client.post("/oauth/token", data=form)
    assert replay.status_code in (400, 401) and replay.get_json()["error"] == "invalid_client"
    forged_key = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(
        claims | {"jti": uuid.uuid4().hex}, forged_key, algorithm="ES256", headers={"kid": "k1"}
    )
    resp = client.post("/oauth/token", data=form | {"client_assertion": forged})
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_a_jwks_the_token_endpoint_cannot_use_is_refused_at_registration(app, client):
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "k1"}
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key)) | {"kid": "k1"}
    h = _admin(app, client)
    for jwks, why in (
        ({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1"}]}, "无法读取"),  # no coordinates
        ({"keys": [private]}, "不可提交私钥"),  # the app's signing key itself
        (
            {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]},
            "EC P-256",
        ),  # a shared secret: no listed algorithm takes it
    ):
        resp = client.post(URL, json=_body(auth_method="private_key_jwt", jwks=jwks), headers=h)
        assert resp.status_code == 422 and why in resp.get_json()["error"]["message"], resp.get_json()
    # A public app may send a JWKS too (unused): an object without a "keys" array is unreadable
    # there as well, not a server error.
    for jwks in ({}, {"fuzzkey": 9223372036854775808}, {"keys": {"kty": "EC"}}):
        body = _body(client_type="public", jwks=jwks)
        resp = client.post(URL, json=body, headers=h)
        error = resp.get_json()["error"]
        assert resp.status_code == 422 and "无法读取" in error["message"] and "jwks" in error["fields"], error
    ok = client.post(URL, json=_body(auth_method="private_key_jwt", jwks={"keys": [public]}), headers=h)
    assert ok.status_code == 201


def test_an_unreadable_stored_jwks_is_invalid_client_not_a_server_error(app, client):
    """A key registered before registration checked keys: the app's token request is refused
    as an unauthenticated client (invalid_client), never a 500."""
    import json
    import time
    import uuid

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from core.db import db
    from domain.oauth.models import OAuthClient

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "k1"}
    h = _admin(app, client)
    cid = client.post(URL, json=_body(auth_method="private_key_jwt", jwks={"keys": [public]}), headers=h)
    cid = cid.get_json()["client"]["client_id"]
    client.post(f"{URL}/{cid}/status", json={"status": "approved"}, headers=h)
    session = db.session()
    session.get(OAuthClient, cid).jwks = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1"}]}
    session.commit()
    now = int(time.time())
    claims = {"iss": cid, "sub": cid, "aud": app.config["PUBLIC_BASE_URL"].rstrip("/") + "/oauth/token",
              "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}  # fmt: skip
    resp = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials", "scope": "catalog.read",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"}),
        },
    )  # fmt: skip
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_the_list_shows_every_app_oldest_first_and_no_secret(app, client, clock):
    h = _admin(app, client)
    first = client.post(URL, json=_body(), headers=h).get_json()
    clock.advance(60)
    second = client.post(URL, json=_body(name="便民出行", client_type="public"), headers=h).get_json()
    listed = client.get(URL, headers=h)
    assert listed.status_code == 200
    assert [c["name"] for c in listed.get_json()] == ["便民银行", "便民出行"]
    assert [c["status"] for c in listed.get_json()] == ["pending", "pending"]
    assert first["client_secret"] not in listed.get_data(as_text=True)
    assert second["client_secret"] is None  # a public app has none


def test_an_app_name_or_contact_citizens_could_not_read_is_refused_and_names_are_stored_trimmed(app, client):
    h = _admin(app, client)
    for blank in ("   ", "\u3000", "\u202e\u200b", "\ufeff "):
        for field in ("name", "contact"):
            resp = client.post(URL, json=_body(**{field: blank}), headers=h)
            assert resp.status_code == 422, (field, blank, resp.get_json())
            error = resp.get_json()["error"]
            assert set(error["fields"]) == {field} and "不可见字符" in error["fields"][field][0]
    english = client.post(URL, json=_body(name=" "), headers=h | {"Accept-Language": "en"})
    assert "invisible characters" in english.get_json()["error"]["fields"]["name"][0]
    assert client.get(URL, headers=h).get_json() == []
    made = client.post(URL, json=_body(name="  便民银行 ", contact=" 95588\n"), headers=h).get_json()[
        "client"
    ]
    assert (made["name"], made["contact"]) == ("便民银行", "95588")
    # The name is what the consent page shows: 64 characters, counted without the spaces around it.
    assert client.post(URL, json=_body(name=f" {'行' * 64} "), headers=h).status_code == 201


def test_registration_outside_the_api_refuses_a_blank_app_name(app):
    import pytest

    from core.db import db
    from domain.oauth.errors import ClientInvalid
    from domain.operators.audit_log import CLI_ACTOR

    with pytest.raises(ClientInvalid):
        clients.register(
            db.session(), actor=CLI_ACTOR, name="\u200b ", contact="95588", client_type="confidential",
            redirect_uris=[REDIRECT], scopes=["profile.basic"],
        )  # fmt: skip
