"""The APNs client against the HTTP/2 simulator: provider tokens, errors, protocol checks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from integrations.apns.client import DEV_PRIVATE_KEY, ApnsClient, ApnsError


@pytest.fixture
def apns(apns_sim: Any, base_config: dict) -> ApnsClient:
    from config import TestConfig

    httpx.post(f"{apns_sim.url}/_sim/reset")
    return ApnsClient.from_config(vars(TestConfig()) | base_config | {"APNS_BASE_URL": apns_sim.url})


def token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def test_the_provider_token_is_reused_then_renewed_after_the_interval(
    apns: ApnsClient, monkeypatch: Any
) -> None:
    first = apns.provider_token()
    assert apns.provider_token() == first
    header = jwt.get_unverified_header(first)
    assert header["alg"] == "ES256" and header["kid"] == apns.key_id
    assert jwt.decode(first, options={"verify_signature": False})["iss"] == apns.team_id
    now = time.time()
    monkeypatch.setattr("integrations.apns.client.time.time", lambda: now + 40 * 60 + 1)
    assert apns.provider_token() != first


def test_refresh_interval_must_be_within_apples_window() -> None:
    for seconds in (60, 2 * 3600):
        with pytest.raises(ValueError):
            ApnsClient(base_url="http://127.0.0.1:1", team_id="T", key_id="K", private_key=DEV_PRIVATE_KEY,
                       topic="t", refresh_seconds=seconds)  # fmt: skip


def test_an_expired_provider_token_is_renewed_and_the_push_goes_through(
    apns: ApnsClient, apns_sim: Any
) -> None:
    stale = jwt.encode({"iss": apns.team_id, "iat": int(time.time()) - 2 * 3600}, DEV_PRIVATE_KEY,
                       algorithm="ES256", headers={"kid": apns.key_id})  # fmt: skip
    apns._token = (stale, time.time())  # cached, but older than APNs accepts
    apns.send(token(), {"aps": {"alert": "hi"}})
    calls = httpx.get(f"{apns_sim.url}/_sim/calls").json()
    assert calls["by_status"] == {"403": 1, "200": 1}


def test_a_token_signed_with_another_key_is_refused(apns_sim: Any, base_config: dict) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from config import TestConfig

    other = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    cfg = vars(TestConfig()) | base_config | {"APNS_BASE_URL": apns_sim.url, "APNS_PRIVATE_KEY": other}
    with pytest.raises(ApnsError) as err:
        ApnsClient.from_config(cfg).send(token(), {"aps": {"alert": "hi"}})
    assert err.value.status == 403 and err.value.reason == "InvalidProviderToken" and not err.value.retryable


def test_the_simulator_checks_the_request_as_apns_does(apns: ApnsClient, apns_sim: Any) -> None:
    with pytest.raises(ApnsError) as err:
        apns.send(token(), {"no_aps": True})
    assert (err.value.status, err.value.reason) == (400, "PayloadEmpty")
    with pytest.raises(ApnsError) as err:
        apns.send(token(), {"aps": {"alert": "x" * 5000}})
    assert (err.value.status, err.value.reason) == (413, "PayloadTooLarge")
    apns.topic = "cn.example.other"
    with pytest.raises(ApnsError) as err:
        apns.send(token(), {"aps": {"alert": "hi"}})
    assert err.value.reason == "TopicDisallowed"
    # HTTP/1.1 is refused: the provider API is HTTP/2 only.
    assert httpx.post(f"{apns_sim.url}/3/device/{token()}", json={"aps": {}}).status_code == 505


def test_server_errors_and_throttling_are_retryable(apns: ApnsClient, apns_sim: Any) -> None:
    httpx.post(f"{apns_sim.url}/_sim/faults", json={"status": 429, "reason": "TooManyRequests", "times": 1})
    with pytest.raises(ApnsError) as err:
        apns.send(token(), {"aps": {"alert": "hi"}})
    assert err.value.retryable and not err.value.unregistered
