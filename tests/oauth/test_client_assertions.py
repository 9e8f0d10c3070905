"""private_key_jwt as the metadata promises it: every listed algorithm verifies, keys no listed
algorithm can use are refused at registration, and an assertion is short-lived and used once."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.domain.operators.factories import admin_headers, make_operator
from tests.oauth.conftest import REDIRECT

URL = "/admin/v1/oauth-clients"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _admin(app: Any, client: Any) -> dict:
    return admin_headers(client, make_operator(app, username="alice", roles=("admin",)))


def _register(client: Any, h: dict, public_jwk: dict) -> Any:
    body = {
        "name": "便民银行", "contact": "95588", "client_type": "confidential", "redirect_uris": [REDIRECT],
        "scopes": ["profile.basic", "catalog.read"], "auth_method": "private_key_jwt",
        "jwks": {"keys": [public_jwk | {"kid": "k1"}]},
    }  # fmt: skip
    made = client.post(URL, json=body, headers=h)
    if made.status_code == 201:
        cid = made.get_json()["client"]["client_id"]
        assert client.post(f"{URL}/{cid}/status", json={"status": "approved"}, headers=h).status_code == 200
    return made


def _form(app: Any, cid: str, key: Any, alg: str, **over: Any) -> dict:
    now = int(time.time())
    claims = {
        "iss": cid, "sub": cid, "aud": app.config["PUBLIC_BASE_URL"].rstrip("/") + "/oauth/token",
        "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex,
    } | over  # fmt: skip
    return {
        "grant_type": "client_credentials", "scope": "catalog.read", "client_assertion_type": ASSERTION,
        "client_assertion": jwt.encode(claims, key, algorithm=alg, headers={"kid": "k1"}),
    }  # fmt: skip


def _rsa() -> tuple[Any, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))


@pytest.mark.parametrize("alg", ["PS256", "RS256", "ES256"])
def test_every_algorithm_the_metadata_lists_authenticates(app: Any, client: Any, alg: str) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").get_json()
    assert alg in meta["token_endpoint_auth_signing_alg_values_supported"]
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    else:
        key, public = _rsa()
    made = _register(client, _admin(app, client), public)
    assert made.status_code == 201, made.get_json()
    cid = made.get_json()["client"]["client_id"]
    resp = client.post("/oauth/token", data=_form(app, cid, key, alg))
    assert resp.status_code == 200, resp.get_json()


def test_keys_no_listed_algorithm_can_use_are_refused_at_registration(app: Any, client: Any) -> None:
    okp = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key()))
    p384 = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key()))
    short = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 1024).public_key()))
    h = _admin(app, client)
    for public in (okp, p384, short):
        made = _register(client, h, public)
        assert made.status_code == 422, made.get_json()
        assert "jwks" in made.get_json()["error"]["fields"]


def test_an_assertion_valid_for_hours_is_refused_and_one_is_used_once(app: Any, client: Any) -> None:
    from core.redis import get_redis

    key = ec.generate_private_key(ec.SECP256R1())
    made = _register(
        client, _admin(app, client), json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    )
    cid = made.get_json()["client"]["client_id"]
    hours = client.post("/oauth/token", data=_form(app, cid, key, "ES256", exp=int(time.time()) + 7200))
    assert hours.status_code in (400, 401) and hours.get_json()["error"] == "invalid_client", hours.get_json()
    jti = uuid.uuid4().hex
    form = _form(app, cid, key, "ES256", exp=int(time.time()) + 240, jti=jti)
    assert client.post("/oauth/token", data=form).status_code == 200
    assert get_redis().ttl(f"oauth:assertion:{cid}:{jti}") >= 240  # remembered while it is valid
    again = client.post("/oauth/token", data=form)
    assert again.status_code in (400, 401) and again.get_json()["error"] == "invalid_client"
