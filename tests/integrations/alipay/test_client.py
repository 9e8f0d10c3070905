"""AlipayFaceProvider end to end against the Alipay simulator (real HTTP, RSA2 both ways, no mocks)."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.alipay import dev_keys
from integrations.alipay.client import CERTIFY, CERTIFY_ID_TTL, AlipayFaceProvider
from integrations.realname.base import (
    REASON_EXPIRED,
    REASON_IDENTITY_MISMATCH,
    REASON_LIVENESS_FAILED,
    REASON_NO_RECORD,
    REASON_REJECTED,
    Person,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)
from integrations.realname.people import DEMO_PEOPLE

ZHANG = Person(*DEMO_PEOPLE[0])
LI = Person(*DEMO_PEOPLE[1])
UNREGISTERED = Person("赵六", "11010119800101007X")  # valid check character, not in the register
CTX = StartContext(out_ref="V0000000000000000000000000000001")


def _ctx(n: int) -> StartContext:
    return StartContext(out_ref=f"V{n:031d}")


def _other_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def provider(cfg, alipay) -> AlipayFaceProvider:
    p = AlipayFaceProvider.from_config(cfg)
    yield p
    p.close()


def _failure(exc_type, fn, *args):
    with pytest.raises(exc_type) as exc:
        fn(*args)
    return exc.value


def test_happy_path_start_then_passed(provider, alipay, cfg):
    started = provider.start(ZHANG, CTX)
    assert started.expires_in == CERTIFY_ID_TTL == 23 * 3600
    assert len(started.provider_ref) == 32
    assert started.client_payload["certify_id"] == started.provider_ref
    url = urlsplit(started.client_payload["certify_url"])
    params = dict(parse_qsl(url.query))
    assert f"{url.scheme}://{url.netloc}{url.path}" == cfg["ALIPAY_GATEWAY"]
    assert params["method"] == CERTIFY and params["sign_type"] == "RSA2" and params["sign"]
    assert params["biz_content"] == f'{{"certify_id":"{started.provider_ref}"}}'  # no personal data

    assert alipay.perform(started.provider_ref, "pass") == {"passed": "T", "fail_reason": None}
    result = provider.result(ZHANG, CTX, started.provider_ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (True, False, None, "T")
    assert result.score is None  # Alipay gives no similarity score
    assert alipay.calls()["counts"] == {
        "alipay.user.certify.open.initialize": 1,
        "alipay.user.certify.open.query": 1,
    }


def test_the_certify_url_opens_the_simulated_page_and_a_tampered_one_is_refused(provider, alipay):
    started = provider.start(ZHANG, CTX)
    url = started.client_payload["certify_url"]
    page = httpx.get(url)
    assert page.status_code == 200 and started.provider_ref in page.text and "pass" in page.text
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params["biz_content"] = '{"certify_id":"someone-elses-certify-id"}'  # signature no longer covers it
    tampered = httpx.get(f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}")
    assert "错误代码 isv.invalid-signature" in tampered.text
    assert alipay.calls()["counts"]["alipay.user.certify.open.certify"] == 1


@pytest.mark.parametrize(
    ("person", "outcome", "reason", "code"),
    [
        (LI, "liveness_fail", REASON_LIVENESS_FAILED, "F:205"),
        (LI, "other_person", REASON_IDENTITY_MISMATCH, "F:204"),
        (UNREGISTERED, "pass", REASON_NO_RECORD, "F:202"),
        (Person("张四", ZHANG.id_number), "pass", REASON_IDENTITY_MISMATCH, "F:201"),
    ],
)
def test_each_failed_outcome_maps_to_its_reason(provider, alipay, person, outcome, reason, code):
    ref = provider.start(person, CTX).provider_ref
    alipay.perform(ref, outcome)
    result = provider.result(person, CTX, ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (
        False,
        False,
        reason,
        code,
    )


@pytest.mark.parametrize(
    ("person", "outcome"), [(LI, "liveness_fail"), (LI, "other_person"), (UNREGISTERED, "pass")]
)
def test_a_failure_without_fail_reason_is_final_with_the_generic_reason(provider, alipay, person, outcome):
    """Without Alipay's per-merchant fail_reason extension (its default) a failed face is a bare
    "F": not passed, not pending."""
    alipay.fail_reasons(False)
    ref = provider.start(person, CTX).provider_ref
    alipay.perform(ref, outcome)
    result = provider.result(person, CTX, ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (
        False, False, REASON_REJECTED, "F",
    )  # fmt: skip


def test_people_added_through_the_control_api_pass(provider, alipay):
    alipay.add_person(UNREGISTERED.name, UNREGISTERED.id_number)
    ref = provider.start(UNREGISTERED, CTX).provider_ref
    alipay.perform(ref, "pass")
    assert provider.result(UNREGISTERED, CTX, ref).passed


def test_a_cancelled_flow_is_not_passed_then_expires(provider, alipay):
    ref = provider.start(ZHANG, CTX).provider_ref
    alipay.perform(ref, "cancel")  # Alipay learns nothing: the query answers a bare "F"
    result = provider.result(ZHANG, CTX, ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (
        False, False, REASON_REJECTED, "F",
    )  # fmt: skip
    alipay.advance(CERTIFY_ID_TTL)
    result = provider.result(ZHANG, CTX, ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (
        False, False, REASON_EXPIRED, "CERTIFY_ID_EXPIRED",
    )  # fmt: skip


def test_an_unfinished_certify_id_expires_after_23_hours_by_core_clock(provider, alipay, clock):
    ref = provider.start(ZHANG, CTX).provider_ref
    clock.advance(hours=22, minutes=59)
    assert provider.result(ZHANG, CTX, ref).reason == REASON_REJECTED  # a bare "F": not passed
    clock.advance(minutes=1)
    assert provider.result(ZHANG, CTX, ref).reason == REASON_EXPIRED
    assert (
        httpx.post(alipay.base_url + "_sim/face/perform", json={"ref": ref, "outcome": "pass"}).status_code
        == 409
    )


def test_a_finished_result_stays_readable_for_90_days(provider, alipay):
    ref = provider.start(ZHANG, CTX).provider_ref
    alipay.perform(ref, "pass")
    alipay.advance(89 * 86400)
    assert provider.result(ZHANG, CTX, ref).passed
    alipay.advance(86400)
    assert provider.result(ZHANG, CTX, ref).reason == REASON_EXPIRED


def test_auto_outcome_answers_for_unperformed_certify_ids(provider, alipay):
    alipay.auto("pass")
    assert provider.result(ZHANG, CTX, provider.start(ZHANG, CTX).provider_ref).passed
    alipay.auto("liveness_fail")
    assert (
        provider.result(LI, _ctx(2), provider.start(LI, _ctx(2)).provider_ref).reason
        == REASON_LIVENESS_FAILED
    )
    alipay.auto(None)
    unfinished = provider.result(LI, _ctx(3), provider.start(LI, _ctx(3)).provider_ref)
    assert (unfinished.passed, unfinished.pending, unfinished.reason) == (False, False, REASON_REJECTED)


def test_duplicate_outer_order_no_and_unknown_certify_id_are_refused(provider, alipay):
    provider.start(ZHANG, CTX)
    err = _failure(ProviderFailed, provider.start, LI, CTX)
    assert err.code == "ILLEGAL_ARGUMENT_FORMAT" and not err.retryable
    err = _failure(ProviderFailed, provider.result, ZHANG, CTX, "0" * 32)
    assert err.code == "OPEN_CERTIFY_BILL_NOT_EXIST"


def test_a_badly_signed_request_is_refused_by_the_simulator(cfg, alipay):
    provider = AlipayFaceProvider.from_config(cfg | {"ALIPAY_APP_PRIVATE_KEY": _other_private_key_pem()})
    err = _failure(ProviderFailed, provider.start, ZHANG, CTX)
    assert err.code == "isv.invalid-signature" and not err.retryable
    assert alipay.calls()["errors"] == {"isv.invalid-signature": 1}


def test_a_badly_signed_response_is_refused_by_the_client(provider, alipay):
    ref = provider.start(ZHANG, CTX).provider_ref
    alipay.perform(ref, "pass")
    alipay.faults(bad_response_signature=True)
    assert _failure(ProviderFailed, provider.result, ZHANG, CTX, ref).code == "bad_response_signature"
    assert _failure(ProviderFailed, provider.start, LI, _ctx(2)).code == "bad_response_signature"


def test_a_response_signed_by_another_key_is_refused(cfg, alipay):
    # The client trusting the wrong "Alipay public key" must not accept the simulator's answers.
    provider = AlipayFaceProvider.from_config(cfg | {"ALIPAY_PUBLIC_KEY": dev_keys.APP_PUBLIC_KEY})
    assert _failure(ProviderFailed, provider.start, ZHANG, CTX).code == "bad_response_signature"


def test_an_unknown_app_id_gets_an_unsigned_refusal(cfg, alipay):
    provider = AlipayFaceProvider.from_config(cfg | {"ALIPAY_APP_ID": "2021000000009999"})
    assert _failure(ProviderFailed, provider.start, ZHANG, CTX).code == "isv.invalid-app-id"


def test_a_certify_id_of_another_app_is_unknown(cfg, alipay):
    other_key = _other_private_key_pem()
    public = serialization.load_pem_private_key(other_key.encode(), None).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    alipay.add_app("2021000000000002", pem.decode())
    ours = AlipayFaceProvider.from_config(cfg)
    theirs = AlipayFaceProvider.from_config(
        cfg | {"ALIPAY_APP_ID": "2021000000000002", "ALIPAY_APP_PRIVATE_KEY": other_key}
    )
    ref = theirs.start(ZHANG, CTX).provider_ref
    alipay.perform(ref, "pass")
    assert theirs.result(ZHANG, CTX, ref).passed
    assert _failure(ProviderFailed, ours.result, ZHANG, CTX, ref).code == "OPEN_CERTIFY_BILL_NOT_EXIST"


@pytest.mark.parametrize(
    ("fault", "exc_type", "code"),
    [
        ("20000", ProviderUnavailable, "isp.unknow-error"),
        ("40004:SYSTEM_ERROR", ProviderUnavailable, "SYSTEM_ERROR"),
        ("40006", ProviderFailed, "isv.insufficient-isv-permissions"),
        ("isv.missing-signature", ProviderFailed, "isv.missing-signature"),
    ],
)
def test_gateway_error_codes_are_classified(provider, alipay, fault, exc_type, code):
    alipay.faults(errors=[fault])
    err = _failure(exc_type, provider.start, ZHANG, CTX)
    assert err.code == code
    assert provider.start(ZHANG, CTX).provider_ref  # the fault answered one call only


def test_an_expired_answer_is_a_verdict_not_an_exception(provider, alipay):
    ref = provider.start(ZHANG, CTX).provider_ref
    alipay.faults(errors=["CERTIFY_ID_EXPIRED"])
    assert provider.result(ZHANG, CTX, ref).reason == REASON_EXPIRED


def test_provider_down_is_unavailable(provider, alipay):
    alipay.faults(down=True)
    err = _failure(ProviderUnavailable, provider.start, ZHANG, CTX)
    assert err.code == "http_503" and err.retryable
    assert alipay.calls()["http_503"] == 1


def test_slow_provider_times_out(cfg, alipay):
    provider = AlipayFaceProvider.from_config(cfg | {"PROVIDER_TIMEOUT": 0.2})
    alipay.faults(latency_ms=600)
    assert _failure(ProviderUnavailable, provider.start, ZHANG, CTX).code == "timeout"
    time.sleep(0.5)  # the abandoned call ends at the simulator, not inside the next test


def test_nothing_listening_is_a_connection_failure(cfg):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    provider = AlipayFaceProvider.from_config(cfg | {"ALIPAY_GATEWAY": f"http://127.0.0.1:{port}/gateway.do"})
    assert _failure(ProviderUnavailable, provider.start, ZHANG, CTX).code == "connection_failed"


def test_a_key_that_cannot_be_loaded_is_a_config_error(cfg):
    err = _failure(
        ProviderFailed, AlipayFaceProvider.from_config, cfg | {"ALIPAY_APP_PRIVATE_KEY": "not a key"}
    )
    assert err.code == "config_error"


def test_no_name_or_id_number_reaches_logs_or_errors(cfg, alipay, caplog):
    caplog.set_level(logging.DEBUG)
    provider = AlipayFaceProvider.from_config(cfg)
    messages = []
    ref = provider.start(ZHANG, CTX).provider_ref
    alipay.perform(ref, "other_person")
    provider.result(ZHANG, CTX, ref)
    for fault in ({"errors": ["40006"]}, {"bad_response_signature": True}, {"down": True}):
        alipay.faults(**fault)
        with pytest.raises((ProviderFailed, ProviderUnavailable)) as exc:
            provider.start(ZHANG, _ctx(9))
        messages.append(str(exc.value))
    text = caplog.text + "\n".join(messages) + repr(ZHANG)
    assert ZHANG.name not in text and ZHANG.id_number not in text
