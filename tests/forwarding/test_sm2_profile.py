"""A province whose profile signs with SM2 (non-repudiation) instead of SM3-HMAC, both ways."""

from __future__ import annotations

import dataclasses

import pytest

from domain.forwarding.delivery import Forwarder
from integrations.province import signing
from integrations.province.client import ProvinceClient, ProvinceError
from integrations.province.profile import load_profile
from integrations.simulator_server import ThreadedSimulator
from tests.forwarding.conftest import forward, fresh, get, submitted


@pytest.fixture
def sm2_province(app, base_config):
    from config import TestConfig
    from integrations.province.simulator import create_simulator

    sm2 = {"PROVINCE_SIGNING": signing.ALG_SM2, "PROVINCE_SIM_SCHEDULE": "off"}
    cfg = vars(TestConfig()) | base_config | sm2
    sim = ThreadedSimulator(create_simulator(cfg)).start()
    yield sim
    sim.stop()


def _sm2_forwarder(app, services, url: str) -> Forwarder:
    profile = load_profile(dict(app.config) | {"PROVINCE_SIGNING": signing.ALG_SM2, "PROVINCE_BASE_URL": url})
    assert profile.credentials.alg == "SM2"
    return Forwarder(
        profile=profile, client=ProvinceClient(profile), encryptor=services.encryptor, redis=None
    )


def test_an_sm2_province_receives_and_answers_verifiably(app, client, zhang, services, sm2_province):
    case = submitted(client, zhang)
    fw = _sm2_forwarder(app, services, sm2_province.url)
    assert forward(services, forwarder=fw) == ["delivered"]
    assert get(client, zhang, case["id"]).get_json()["province"]["state"] == "received"
    stats = sm2_province.app.extensions["province_sim"].state.counts
    assert stats["received"] == 1


def test_a_request_signed_with_another_user_id_is_refused_retried_and_reported(
    app, client, zhang, services, sm2_province, caplog
):
    """The province refuses our signature with an answer it cannot sign for us to verify: not
    taken as its final word (anything in between could send it), retried, and reported to
    operators at once (alert forwarding.unverifiable_refusal)."""
    case = submitted(client, zhang)
    fw = _sm2_forwarder(app, services, sm2_province.url)
    wrong = dataclasses.replace(fw.profile.credentials, user_id="0000000000000000")
    profile = dataclasses.replace(fw.profile, credentials=wrong)
    bad = Forwarder(profile=profile, client=ProvinceClient(profile), encryptor=services.encryptor, redis=None)
    with caplog.at_level("ERROR"):
        assert forward(services, forwarder=bad) == ["retrying"]
    assert any(getattr(r, "alert", None) == "forwarding.unverifiable_refusal" for r in caplog.records)
    from domain.applications.models import ForwardingOutbox

    row = fresh().query(ForwardingOutbox).filter_by(application_id=case["id"]).one()
    assert "401" in row.last_error
    assert sm2_province.app.extensions["province_sim"].state.auth_failures["bad_signature"] == 1


def test_an_answer_not_signed_by_the_province_is_not_trusted(app, services, sm2_province):
    fw = _sm2_forwarder(app, services, sm2_province.url)
    # Pretend the province's key is another one: its (genuine) answers no longer verify.
    other = dataclasses.replace(fw.profile.credentials, peer_public_key=app.config["PROVINCE_SM2_PUBLIC_KEY"])
    client = ProvinceClient(dataclasses.replace(fw.profile, credentials=other))
    with pytest.raises(ProvinceError) as err:
        client.status("NO-SUCH")
    assert "unverifiable" in str(err.value)
