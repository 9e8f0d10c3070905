"""TencentFaceIdProvider end to end against the FaceID simulator (official SDK, real HTTP, no mocks)."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from tencentcloud.faceid.v20180301 import models

from config import load_config
from integrations.realname.base import (
    REASON_CANCELLED,
    REASON_EXPIRED,
    REASON_IDENTITY_MISMATCH,
    REASON_LIVENESS_FAILED,
    REASON_NO_RECORD,
    IdentityRefused,
    Person,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)
from integrations.realname.people import DEMO_PEOPLE
from integrations.tencentcloud.faceid_client import BIZ_TOKEN_TTL, TencentFaceIdProvider

ZHANG = Person(*DEMO_PEOPLE[0])
LI = Person(*DEMO_PEOPLE[1])
MAIMAITI = Person(*DEMO_PEOPLE[3])  # 买买提·艾力, stored with U+00B7
UNREGISTERED = Person("赵六", "11010119800101007X")  # valid check character, not in the register
CTX = StartContext(out_ref="V0000000000000000000000000000001")


@pytest.fixture
def cfg(faceid_sim) -> dict:
    return vars(load_config("test")) | {
        "FACEID_ENDPOINT": f"{faceid_sim.host}:{faceid_sim.port}",
        "FACEID_SCHEME": "http",
    }


@pytest.fixture
def provider(cfg, faceid) -> TencentFaceIdProvider:
    return TencentFaceIdProvider.from_config(cfg)


def _failure(exc_type, fn, *args):
    with pytest.raises(exc_type) as exc:
        fn(*args)
    return exc.value


def test_happy_path_start_pending_then_passed(provider, faceid):
    started = provider.start(ZHANG, CTX)
    assert started.expires_in == BIZ_TOKEN_TTL == 7200
    assert started.client_payload == {"biz_token": started.provider_ref, "url": started.client_payload["url"]}
    assert started.client_payload["url"].startswith("https://faceid.qq.com/") and started.provider_request_id
    assert provider.result(ZHANG, CTX, started.provider_ref).pending  # the citizen has not finished

    assert faceid.perform(started.provider_ref, "pass") == 0
    result = provider.result(ZHANG, CTX, started.provider_ref)
    assert result.passed and not result.pending and result.reason is None
    assert result.provider_code == "0" and 80 <= result.score <= 99 and result.provider_request_id
    calls = faceid.calls()
    assert calls["by_action"] == {"DetectAuth": 1, "GetDetectInfoEnhanced": 2}
    assert calls["image_requests"] == 0  # only the text result was ever asked for


@pytest.mark.parametrize(
    ("outcome", "reason", "code"),
    [
        ("liveness_fail", REASON_LIVENESS_FAILED, "1002"),
        ("other_person", REASON_IDENTITY_MISMATCH, "2016"),
        ("cancel", REASON_CANCELLED, "17"),
    ],
)
def test_each_failed_outcome_maps_to_its_reason(provider, faceid, outcome, reason, code):
    ref = provider.start(LI, CTX).provider_ref
    faceid.perform(ref, outcome)
    result = provider.result(LI, CTX, ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (
        False,
        False,
        reason,
        code,
    )


def test_other_person_has_a_low_score(provider, faceid):
    ref = provider.start(LI, CTX).provider_ref
    faceid.perform(ref, "other_person")
    assert provider.result(LI, CTX, ref).score < 70


def test_a_live_face_for_an_unknown_id_number_is_no_record(provider, faceid):
    ref = provider.start(UNREGISTERED, CTX).provider_ref
    faceid.perform(ref, "pass")
    result = provider.result(UNREGISTERED, CTX, ref)
    assert (result.passed, result.reason, result.provider_code) == (False, REASON_NO_RECORD, "2005")


def test_a_live_face_for_a_known_id_under_another_name_is_a_mismatch(provider, faceid):
    wrong_name = Person("张四", ZHANG.id_number)
    ref = provider.start(wrong_name, CTX).provider_ref
    faceid.perform(ref, "pass")
    result = provider.result(wrong_name, CTX, ref)
    assert (result.passed, result.reason, result.provider_code) == (False, REASON_IDENTITY_MISMATCH, "2006")


def test_people_added_through_the_control_api_pass(provider, faceid):
    faceid.add_person(UNREGISTERED.name, UNREGISTERED.id_number)
    lower_x = Person(UNREGISTERED.name, UNREGISTERED.id_number.lower())  # sent upper: FaceID refuses x
    ref = provider.start(lower_x, CTX).provider_ref
    faceid.perform(ref, "pass")
    assert provider.result(lower_x, CTX, ref).passed


def test_a_pass_for_another_identity_or_verification_is_a_mismatch(provider, faceid):
    ref = provider.start(ZHANG, CTX).provider_ref
    faceid.perform(ref, "pass")
    for person, ctx in ((LI, CTX), (ZHANG, StartContext(out_ref="V0000000000000000000000000000002"))):
        result = provider.result(person, ctx, ref)
        assert (result.passed, result.reason, result.provider_code) == (
            False, REASON_IDENTITY_MISMATCH, "0:other_identity",
        )  # fmt: skip


def _passed_text(id_card: str, name: str) -> models.DetectInfoText:
    """A passing DetectInfoText as the SDK parses it, naming `name`."""
    text = models.DetectInfoText()
    text._deserialize({"ErrCode": 0, "LiveStatus": 0, "Comparestatus": 0, "Sim": "91.00",
                       "IdCard": id_card, "Name": name, "Extra": CTX.out_ref})  # fmt: skip
    return text


@pytest.mark.parametrize("answered", ["买买提•艾力", "买买提 · 艾力", "买买提．艾力", "买买提・艾力"])
def test_a_pass_naming_the_person_with_another_dot_or_spacing_is_theirs(provider, faceid, answered):
    """FaceID answers with the name as its side spells it; 买买提•艾力 is still our 买买提·艾力."""
    ref = provider.start(MAIMAITI, CTX).provider_ref
    faceid.perform(ref, "pass")
    result = provider._verdict(MAIMAITI, CTX, _passed_text(MAIMAITI.id_number, answered), "req-1")
    assert (result.passed, result.reason, result.provider_code) == (True, None, "0")


def test_a_pass_naming_someone_else_is_still_a_mismatch(provider):
    result = provider._verdict(MAIMAITI, CTX, _passed_text(MAIMAITI.id_number, "买买提·艾尔"), "req-1")
    assert (result.passed, result.provider_code) == (False, "0:other_identity")


@pytest.mark.parametrize(
    ("registered", "sent"),
    [("买买提•艾力", "买买提·艾力"), ("赵 六", "赵六"), ("赵六", "赵\u3000六"), ("阿依·古丽", "阿依．古丽")],
)
def test_the_simulated_register_reads_names_in_canonical_form(provider, faceid, registered, sent):
    """A person added with a look-alike dot or a typed space is found under the stored spelling."""
    faceid.add_person(registered, UNREGISTERED.id_number)
    person = Person(sent, UNREGISTERED.id_number)
    ref = provider.start(person, CTX).provider_ref
    faceid.perform(ref, "pass")
    result = provider.result(person, CTX, ref)
    assert (result.passed, result.provider_code) == (True, "0")


def test_unfinished_flow_expires_after_two_hours(provider, faceid):
    ref = provider.start(ZHANG, CTX).provider_ref
    faceid.advance(BIZ_TOKEN_TTL + 1)
    result = provider.result(ZHANG, CTX, ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (
        False,
        False,
        REASON_EXPIRED,
        "15",
    )
    assert faceid.perform(ref, "pass") == 15  # too late for the citizen as well


def test_a_finished_result_is_readable_for_three_days_then_the_token_expires(provider, faceid, clock):
    ref = provider.start(ZHANG, CTX).provider_ref
    faceid.perform(ref, "pass")
    clock.advance(hours=48)  # core.clock drives expiry, as in the rest of the test suite
    assert provider.result(ZHANG, CTX, ref).passed
    faceid.advance(24 * 3600 + 1)
    result = provider.result(ZHANG, CTX, ref)
    assert (result.passed, result.reason, result.provider_code) == (
        False, REASON_EXPIRED, "InvalidParameterValue.BizTokenExpired",
    )  # fmt: skip


def test_auto_outcome_answers_for_unperformed_tokens(provider, faceid):
    ref = provider.start(ZHANG, CTX).provider_ref
    faceid.auto("pass")
    assert provider.result(ZHANG, CTX, ref).passed
    faceid.auto(None)
    assert provider.result(LI, CTX, provider.start(LI, CTX).provider_ref).pending


def test_unknown_biz_token_is_refused(provider, faceid):
    err = _failure(ProviderFailed, provider.result, ZHANG, CTX, "00000000-0000-0000-0000-000000000000")
    assert err.code == "InvalidParameterValue.BizTokenIllegal"


def test_wrong_secret_key_is_refused_by_the_simulator(cfg, faceid):
    provider = TencentFaceIdProvider.from_config(cfg | {"TENCENT_SECRET_KEY": "not-the-key"})
    err = _failure(ProviderFailed, provider.start, ZHANG, CTX)
    assert err.code == "AuthFailure.SignatureFailure" and not err.retryable
    assert faceid.calls()["errors"] == {"AuthFailure.SignatureFailure": 1}


def test_unknown_secret_id_and_rule_id_are_refused(cfg, faceid):
    unknown_id = TencentFaceIdProvider.from_config(cfg | {"TENCENT_SECRET_ID": "AKIDnobody"})
    assert _failure(ProviderFailed, unknown_id.start, ZHANG, CTX).code == "AuthFailure.SecretIdNotFound"
    other_rule = TencentFaceIdProvider.from_config(cfg | {"FACEID_RULE_ID": "99"})
    assert (
        _failure(ProviderFailed, other_rule.start, ZHANG, CTX).code == "InvalidParameterValue.RuleIdNotExist"
    )


def test_missing_configuration_fails_fast(cfg):
    err = _failure(ProviderFailed, TencentFaceIdProvider.from_config, cfg | {"FACEID_RULE_ID": ""})
    assert err.code == "config_error"


def test_provider_down_is_unavailable(provider, faceid):
    faceid.faults(down=True)
    err = _failure(ProviderUnavailable, provider.start, ZHANG, CTX)
    assert err.code == "http_5xx" and err.retryable
    assert faceid.calls()["http_5xx"] == 1


def test_slow_provider_times_out(cfg, faceid):
    provider = TencentFaceIdProvider.from_config(cfg | {"PROVIDER_TIMEOUT": 0.2})
    faceid.faults(latency_ms=600)
    assert _failure(ProviderUnavailable, provider.start, ZHANG, CTX).code == "timeout"
    time.sleep(0.5)  # the abandoned call ends at the simulator, not inside the next test


def test_nothing_listening_is_a_connection_failure(cfg):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    provider = TencentFaceIdProvider.from_config(cfg | {"FACEID_ENDPOINT": f"127.0.0.1:{port}"})
    assert _failure(ProviderUnavailable, provider.start, ZHANG, CTX).code == "connection_failed"


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [
        ("RequestLimitExceeded", ProviderUnavailable),
        ("InternalError", ProviderUnavailable),
        ("FailedOperation.CompareLibServiceUnavailable", ProviderUnavailable),
        ("UnauthorizedOperation.Arrears", ProviderFailed),
        ("UnauthorizedOperation.Nonactivated", ProviderFailed),
        # the person is refused outright at start: a final outcome for the citizen, not a fault
        ("FailedOperation.IdNameMisMatch", IdentityRefused),
    ],
)
def test_provider_error_codes_are_classified(provider, faceid, code, exc_type):
    faceid.faults(errors=[code])
    err = _failure(exc_type, provider.start, ZHANG, CTX)
    assert err.code == code and err.retryable is (exc_type is ProviderUnavailable)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("FailedOperation.IdNameMisMatch", REASON_IDENTITY_MISMATCH),
        ("FailedOperation.IdNoExistSystem", REASON_NO_RECORD),
        ("FailedOperation.LivessDetectFail", REASON_LIVENESS_FAILED),
        ("InvalidParameterValue.BizTokenExpired", REASON_EXPIRED),
    ],
)
def test_final_error_codes_of_the_result_call_are_results(provider, faceid, code, reason):
    ref = provider.start(ZHANG, CTX).provider_ref
    faceid.faults(errors=[code])
    result = provider.result(ZHANG, CTX, ref)
    assert (result.passed, result.reason, result.provider_code) == (False, reason, code)


def test_malformed_response_is_refused(provider, faceid):
    faceid.faults(malformed_response=True)
    assert _failure(ProviderFailed, provider.start, ZHANG, CTX).code == "malformed_response"


def test_no_name_or_id_number_in_logs_or_errors(cfg, provider, faceid, caplog):
    caplog.set_level(logging.DEBUG)
    ref = provider.start(ZHANG, CTX).provider_ref
    provider.result(ZHANG, CTX, ref)
    faceid.perform(ref, "pass")
    provider.result(ZHANG, CTX, ref)
    faceid.faults(errors=["FailedOperation.IdFormatError"])
    err = _failure(IdentityRefused, provider.start, ZHANG, CTX)
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records) + str(err)
    assert caplog.records  # the client does log its calls
    assert ZHANG.name not in logged and ZHANG.id_number not in logged
    assert ZHANG.id_number not in repr(ZHANG)
