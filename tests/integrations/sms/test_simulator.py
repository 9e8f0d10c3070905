"""The SMS simulator speaks Tencent Cloud SMS 2021-01-11 and refuses what the real service refuses.

Most checks go through the production client (the official SDK underneath); raw signed requests
cover what the SDK would never send.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from config import load_config
from integrations.sms.client import SmsClient, SmsError
from integrations.tencentcloud import tc3

PHONE = "13800138000"


@pytest.fixture
def sim(sms_sim):
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


@pytest.fixture
def cfg(sim):
    return vars(load_config("test")) | {"SMS_ENDPOINT": f"{sim.host}:{sim.port}", "SMS_SCHEME": "http"}


def _client(cfg, **overrides) -> SmsClient:
    return SmsClient.from_config(cfg | overrides)


def _send(client: SmsClient, cfg, phone=PHONE, params=("123456", "5"), template=None, context="job-1"):
    return client.send(phone, template or cfg["SMS_TEMPLATE_OTP"], list(params), session_context=context)


def _error(fn, *args, **kwargs) -> SmsError:
    with pytest.raises(SmsError) as exc:
        fn(*args, **kwargs)
    return exc.value


def _messages(sim, phone=None) -> list[dict]:
    return httpx.get(sim.url + "_sim/messages", params={"phone": phone} if phone else None).json()["messages"]


def _raw(sim, cfg, body: dict | bytes, send_host: str | None = None, **sign_overrides) -> dict:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    kwargs = dict(
        secret_id=cfg["TENCENT_SECRET_ID"], secret_key=cfg["TENCENT_SECRET_KEY"], service="sms",
        host=f"{sim.host}:{sim.port}", action="SendSms", version="2021-01-11", region="ap-guangzhou",
        body=payload,
    )  # fmt: skip
    kwargs.update(sign_overrides)
    headers = tc3.sign_request(**kwargs)
    if send_host:
        headers["Host"] = send_host
    resp = httpx.post(sim.url, content=payload, headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    return resp.json()["Response"]


def _valid_body(cfg, **overrides) -> dict:
    body = {
        "PhoneNumberSet": ["+86" + PHONE], "SmsSdkAppId": cfg["SMS_SDK_APP_ID"],
        "SignName": cfg["SMS_SIGN_NAME"], "TemplateId": cfg["SMS_TEMPLATE_OTP"],
        "TemplateParamSet": ["123456", "5"],
    }  # fmt: skip
    body.update(overrides)
    return body


def test_send_delivers_the_rendered_message(sim, cfg):
    result = _send(_client(cfg), cfg, context="job-42")
    assert result.serial_no and result.fee == 1 and result.session_context == "job-42"
    [msg] = _messages(sim, PHONE)
    assert msg["phone"] == "+8613800138000" and msg["params"] == ["123456", "5"]
    assert (
        msg["content"].startswith("【一网通办】") and "123456" in msg["content"] and "5分钟" in msg["content"]
    )
    assert msg["serial_no"] == result.serial_no and msg["session_context"] == "job-42"
    assert _messages(sim, "+8613900139000") == []


def test_success_response_has_the_real_fields(sim, cfg):
    resp = _raw(sim, cfg, _valid_body(cfg, SessionContext="ctx"))
    [status] = resp["SendStatusSet"]
    assert set(status) == {"SerialNo", "PhoneNumber", "Fee", "SessionContext", "Code", "Message", "IsoCode"}
    assert (status["Code"], status["PhoneNumber"], status["IsoCode"], status["SessionContext"]) == (
        "Ok", "+8613800138000", "CN", "ctx",
    )  # fmt: skip
    assert resp["RequestId"]


def test_wrong_secret_key_is_a_signature_failure(sim, cfg):
    err = _error(_send, _client(cfg, TENCENT_SECRET_KEY="wrong-key"), cfg)
    assert err.code == "AuthFailure.SignatureFailure" and not err.retryable and err.request_id
    assert _messages(sim) == []


def test_unknown_secret_id(sim, cfg):
    err = _error(_send, _client(cfg, TENCENT_SECRET_ID="AKIDnobody"), cfg)
    assert err.code == "AuthFailure.SecretIdNotFound" and not err.retryable


def test_stale_timestamp_is_refused(sim, cfg):
    stale = _raw(sim, cfg, _valid_body(cfg), timestamp=int(time.time()) - 360)
    assert stale["Error"]["Code"] == "AuthFailure.SignatureExpire" and stale["RequestId"]
    assert _messages(sim) == []
    fresh = _raw(sim, cfg, _valid_body(cfg))
    assert fresh["SendStatusSet"][0]["Code"] == "Ok"


def test_host_port_is_part_of_the_signature(sim, cfg):
    real_host = f"{sim.host}:{sim.port}"
    resp = _raw(sim, cfg, _valid_body(cfg), host=sim.host, send_host=real_host)
    assert resp["Error"]["Code"] == "AuthFailure.SignatureFailure"
    resp = _raw(sim, cfg, _valid_body(cfg), host=f"{sim.host}:{sim.port + 1}", send_host=real_host)
    assert resp["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_unapproved_or_unknown_template(sim, cfg):
    client = _client(cfg)
    assert (
        _error(_send, client, cfg, template="999999").code == "FailedOperation.TemplateIncorrectOrUnapproved"
    )
    otp = cfg["SMS_TEMPLATE_OTP"]
    httpx.put(sim.url + f"_sim/templates/{otp}", json={"approved": False}).raise_for_status()
    err = _error(_send, client, cfg)
    assert err.code == "FailedOperation.TemplateIncorrectOrUnapproved" and not err.retryable
    assert _messages(sim) == []


def test_unapproved_sign(sim, cfg):
    err = _error(_send, _client(cfg, SMS_SIGN_NAME="未审核签名"), cfg)
    assert err.code == "FailedOperation.SignatureIncorrectOrUnapproved" and not err.retryable


def test_unknown_sdk_app_id(sim, cfg):
    assert _error(_send, _client(cfg, SMS_SDK_APP_ID="1400999999"), cfg).code == (
        "InvalidParameterValue.SdkAppIdNotExist"
    )


@pytest.mark.parametrize("params", [("123456",), ("123456", "5", "extra"), ("12345a", "5"), ("1234567", "5")])
def test_template_parameters_are_checked(sim, cfg, params):
    err = _error(_send, _client(cfg), cfg, params=params)
    assert err.code == "InvalidParameterValue.TemplateParameterFormatError" and not err.retryable


def test_incorrect_phone_number_is_a_per_number_status(sim, cfg):
    resp = _raw(sim, cfg, _valid_body(cfg, PhoneNumberSet=["+86123", "+8613800138000"]))
    codes = [s["Code"] for s in resp["SendStatusSet"]]
    assert codes == ["InvalidParameterValue.IncorrectPhoneNumber", "Ok"]
    err = _error(_send, _client(cfg), cfg, phone="+86123")
    assert err.code == "InvalidParameterValue.IncorrectPhoneNumber" and not err.retryable


def test_per_number_frequency_limits(sim, cfg):
    client = _client(cfg)
    _send(client, cfg)
    err = _error(_send, client, cfg)
    assert err.code == "LimitExceeded.PhoneNumberThirtySecondLimit" and err.retryable  # it lifts
    _send(client, cfg, phone="13900139000")  # another number is not limited
    for _ in range(4):
        httpx.post(sim.url + "_sim/advance", json={"seconds": 31})
        _send(client, cfg)
    httpx.post(sim.url + "_sim/advance", json={"seconds": 31})
    assert _error(_send, client, cfg).code == "LimitExceeded.PhoneNumberOneHourLimit"
    assert len(_messages(sim, PHONE)) == 5


def test_protocol_errors(sim, cfg):
    assert _raw(sim, cfg, _valid_body(cfg), action="SendSmsNow")["Error"]["Code"] == "InvalidAction"
    assert _raw(sim, cfg, _valid_body(cfg), version="2019-07-11")["Error"]["Code"] == "NoSuchVersion"
    assert _raw(sim, cfg, _valid_body(cfg), region="ap-mars")["Error"]["Code"] == "UnsupportedRegion"
    assert _raw(sim, cfg, _valid_body(cfg), region=None)["Error"]["Code"] == "MissingParameter"
    assert _raw(sim, cfg, _valid_body(cfg, Foo="1"))["Error"]["Code"] == "UnknownParameter"
    no_template = _valid_body(cfg)
    del no_template["TemplateId"]
    assert _raw(sim, cfg, no_template)["Error"]["Code"] == "MissingParameter"
    assert _raw(sim, cfg, b"{not json")["Error"]["Code"] == "FailedOperation.JsonParseFail"
    assert _raw(sim, cfg, _valid_body(cfg, PhoneNumberSet=["+8613800138000"] * 201))["Error"]["Code"] == (
        "LimitExceeded.PhoneNumberCountLimit"
    )
    unsigned = httpx.post(sim.url, json=_valid_body(cfg)).json()["Response"]
    assert unsigned["Error"]["Code"] == "MissingParameter" and unsigned["RequestId"]
    assert _messages(sim) == []


def test_get_requests_are_supported(sim, cfg):
    from urllib.parse import urlencode

    query = urlencode({
        "PhoneNumberSet.0": "+8613800138000", "SmsSdkAppId": cfg["SMS_SDK_APP_ID"],
        "SignName": cfg["SMS_SIGN_NAME"], "TemplateId": cfg["SMS_TEMPLATE_OTP"],
        "TemplateParamSet.0": "1", "TemplateParamSet.1": "5",
    })  # fmt: skip
    headers = tc3.sign_request(
        secret_id=cfg["TENCENT_SECRET_ID"], secret_key=cfg["TENCENT_SECRET_KEY"], service="sms",
        host=f"{sim.host}:{sim.port}", action="SendSms", version="2021-01-11", region="ap-guangzhou",
        body=b"", method="GET", query=query, content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    resp = httpx.get(f"{sim.url}?{query}", headers=headers).json()["Response"]
    assert resp["SendStatusSet"][0]["Code"] == "Ok"
    assert _messages(sim, PHONE)[0]["params"] == ["1", "5"]


def test_injected_gateway_5xx_is_retryable(sim, cfg):
    httpx.post(sim.url + "_sim/faults", json={"http_5xx_rate": 1.0, "http_status": 502}).raise_for_status()
    err = _error(_send, _client(cfg), cfg)
    assert err.code == "ServerNetworkError" and err.retryable
    assert httpx.get(sim.url + "_sim/calls").json()["http_5xx"] == 1
    assert _messages(sim) == []


def test_injected_internal_error_is_retryable(sim, cfg):
    httpx.post(sim.url + "_sim/faults", json={"internal_error_rate": 1.0}).raise_for_status()
    err = _error(_send, _client(cfg), cfg)
    assert err.code == "InternalError" and err.retryable


def test_injected_error_codes_answer_the_next_calls_in_order(sim, cfg):
    httpx.post(
        sim.url + "_sim/faults",
        json={"errors": ["RequestLimitExceeded", "AuthFailure.UnauthorizedOperation"]},
    )
    client = _client(cfg)
    first, second = _error(_send, client, cfg), _error(_send, client, cfg)
    assert (first.code, first.retryable) == ("RequestLimitExceeded", True)
    assert (second.code, second.retryable) == ("AuthFailure.UnauthorizedOperation", False)
    assert _send(client, cfg).serial_no
    calls = httpx.get(sim.url + "_sim/calls").json()
    assert calls["total"] == 3 and calls["errors"] == {
        "RequestLimitExceeded": 1,
        "AuthFailure.UnauthorizedOperation": 1,
    }


def test_latency_beyond_the_client_timeout_is_a_retryable_network_error(sim, cfg):
    httpx.post(sim.url + "_sim/faults", json={"latency_ms": 600}).raise_for_status()
    err = _error(_send, _client(cfg, SMS_TIMEOUT=0.2), cfg)
    assert err.code == "ClientNetworkError" and err.retryable


def test_unreachable_endpoint_is_retryable(cfg):
    err = _error(_send, _client(cfg, SMS_ENDPOINT="127.0.0.1:9", SMS_TIMEOUT=1.0), cfg)
    assert err.code == "ClientNetworkError" and err.retryable


def test_fault_settings_are_validated(sim):
    assert httpx.post(sim.url + "_sim/faults", json={"nonsense": 1}).status_code == 400


def test_reset_forgets_messages_faults_and_counts(sim, cfg):
    _send(_client(cfg), cfg)
    httpx.post(sim.url + "_sim/faults", json={"internal_error_rate": 1.0})
    httpx.post(sim.url + "_sim/reset").raise_for_status()
    assert _messages(sim) == [] and httpx.get(sim.url + "_sim/calls").json()["total"] == 0
    assert _send(_client(cfg), cfg).serial_no  # neither the fault nor the 30 s window survived


def test_error_messages_never_carry_the_phone_number(sim, cfg):
    httpx.post(sim.url + "_sim/faults", json={"errors": ["InvalidParameterValue.IncorrectPhoneNumber"]})
    err = _error(_send, _client(cfg), cfg)
    assert PHONE not in str(err)
