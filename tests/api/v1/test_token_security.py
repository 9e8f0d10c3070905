"""Forged, wrong-audience, malformed and rotated-key tokens."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import make_citizen


def _me(client, token):
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_missing_and_malformed_tokens(client):
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        r = client.get("/v1/me", headers=headers)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.required"
    r = _me(client, "not-a-jwt")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.token_invalid"


def test_forged_token_signed_by_another_key_is_rejected(client, citizen, services):
    claims = jwt.decode(citizen["access_token"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(citizen["access_token"])["kid"]
    forged = jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid}
    )
    r = _me(client, forged)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.token_invalid"


# The forged HS256 token is signed with a deliberately short key: pyjwt's warning about it is noise here.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_alg_none_and_hs256_confusion_rejected(client, citizen):
    claims = jwt.decode(citizen["access_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert _me(client, unsigned).status_code == 401
    kid = jwt.get_unverified_header(citizen["access_token"])["kid"]
    hs = jwt.encode(claims, "secret", algorithm="HS256", headers={"kid": kid})
    assert _me(client, hs).status_code == 401


def test_wrong_audience_and_issuer_rejected(client, citizen, services):
    for override in ({"aud": "yiwang-admin"}, {"aud": "someone-else"}):
        token = services.tokens.mint(
            audience=override["aud"], subject=citizen["account_id"], ttl=60,
            claims={"typ": "citizen", "sid": citizen["session_id"], "channel": "app", "idl": "L1"},
        )  # fmt: skip
        r = _me(client, token)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.token_invalid"
    key = services.keyring.signing_key()
    claims = {
        "iss": "https://evil",
        "aud": "yiwang-api",
        "sub": citizen["account_id"],
        "sid": citizen["session_id"],
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    bad_iss = jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
    assert _me(client, bad_iss).status_code == 401


def test_key_rotation_keeps_old_tokens_valid_until_they_expire(app, client, clock):
    before = make_citizen(app)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    after = make_citizen(app)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    new_kid = jwt.get_unverified_header(after["access_token"])["kid"]
    assert old_kid != new_kid
    # Nobody is logged out by the rotation.
    assert client.get("/v1/me", headers=before["headers"]).status_code == 200
    assert client.get("/v1/me", headers=after["headers"]).status_code == 200
    jwks = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert {k["kid"] for k in jwks} == {old_kid, new_kid}
    assert all(k["kty"] == "EC" and "d" not in k for k in jwks)
    # Operator tokens (8 h) signed before the rotation keep working through the grace period.
    grace = max(app.config["ACCESS_TOKEN_TTL"], app.config["ADMIN_TOKEN_TTL"])
    clock.advance(grace - 60)
    app.extensions["yiwang"].keyring.invalidate()
    assert old_kid in {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    # Once the old key's grace period is over, it leaves the JWKS and stops verifying.
    clock.advance(60 + app.config["SIGNING_KEY_CACHE_SECONDS"] + 61)
    app.extensions["yiwang"].keyring.invalidate()
    jwks = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert {k["kid"] for k in jwks} == {new_kid}
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": before["refresh_token"]})
    assert refreshed.status_code == 200  # the session survives: its refresh token still works
    assert jwt.get_unverified_header(refreshed.get_json()["access_token"])["kid"] == new_kid


def test_a_process_that_missed_the_rotation_reloads_on_unknown_kid(app, client, services):
    from core.db import db
    from core.signing_keys import KeyRing, rotate

    services.keyring.signing_key()  # warm this process's cache
    other = KeyRing(db.session.session_factory, services.encryptor, cache_seconds=3600)
    rotate(db.session(), services.encryptor, verify_grace=960, actor_type="system", actor_id="test")
    other.invalidate()
    from core.tokens import TokenService

    minted = TokenService(other, app.config["JWT_ISSUER"])
    who = make_citizen(app)
    token = minted.mint(
        audience="yiwang-api", subject=who["account_id"], ttl=60,
        claims={"typ": "citizen", "sid": who["session_id"], "channel": "app", "idl": "L1"},
    )  # fmt: skip
    import time as _t

    _t.sleep(1.05)  # unknown-kid reloads are limited to one per second
    assert _me(client, token).status_code == 200


def test_token_claims(citizen, app):
    claims = jwt.decode(citizen["access_token"], options={"verify_signature": False})
    assert claims["iss"] == app.config["JWT_ISSUER"]
    assert claims["aud"] == "yiwang-api"
    assert claims["sub"] == citizen["account_id"]
    assert claims["sid"] == citizen["session_id"]
    assert claims["channel"] == "app"
    assert claims["idl"] == "L1"  # phone or WeChat bound, no real name yet
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(citizen["access_token"])["alg"] == "ES256"


def test_a_401_of_bearer_authentication_carries_the_rfc6750_challenge(client, citizen, services, clock):
    """RFC 6750 §3: `WWW-Authenticate: Bearer` without a token, `error="invalid_token"` with one
    that is malformed, forged, expired or revoked; the error body is the usual one."""
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        r = client.get("/v1/me", headers=headers)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth.required"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    bad = _me(client, "not-a-jwt")
    assert bad.get_json()["error"]["code"] == "auth.token_invalid"
    assert bad.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert _me(client, citizen["access_token"]).status_code == 200
    assert "WWW-Authenticate" not in _me(client, citizen["access_token"]).headers
    services.revocations.revoke(citizen["session_id"])
    revoked = _me(client, citizen["access_token"])
    assert revoked.status_code == 401 and revoked.get_json()["error"]["code"] == "auth.session_revoked"
    assert revoked.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    other = make_citizen(client.application)
    clock.advance(901)
    expired = _me(client, other["access_token"])
    assert expired.status_code == 401 and expired.get_json()["error"]["code"] == "auth.token_expired"
    assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
