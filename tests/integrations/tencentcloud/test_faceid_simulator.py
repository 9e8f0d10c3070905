"""The FaceID simulator refuses what Tencent Cloud refuses: raw requests signed (or mis-signed) by hand."""

from __future__ import annotations

import json
import time
import warnings

import httpx
import pytest
from tencentcloud.faceid.v20180301 import models

from config import load_config
from integrations.realname.people import DEMO_PEOPLE
from integrations.tencentcloud import tc3

NAME, ID_NUMBER = DEMO_PEOPLE[0]
FULL_WIDTH_ID = ID_NUMBER[:17].translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)}) + ID_NUMBER[17]


@pytest.fixture
def cfg(faceid_sim) -> dict:
    return vars(load_config("test"))


def _call(sim, cfg, action: str, body: dict | bytes, **overrides) -> dict:
    """POST one API call signed with tc3.sign_request; `overrides` change what gets signed."""
    payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    kwargs = dict(
        secret_id=cfg["TENCENT_SECRET_ID"], secret_key=cfg["TENCENT_SECRET_KEY"], service="faceid",
        host=f"{sim.host}:{sim.port}", action=action, version="2018-03-01", body=payload,
    )  # fmt: skip
    kwargs.update(overrides)
    headers = tc3.sign_request(**kwargs)
    headers["Host"] = f"{sim.host}:{sim.port}"  # delivered here, whatever host was signed
    resp = httpx.post(sim.url, content=payload, headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    return resp.json()["Response"]


def _auth(sim, cfg, **fields) -> dict:
    body = {"RuleId": cfg["FACEID_RULE_ID"], "IdCard": ID_NUMBER, "Name": NAME, "Extra": "V1"} | fields
    return _call(sim, cfg, "DetectAuth", {k: v for k, v in body.items() if v is not None})


def _info(sim, cfg, token: str) -> dict:
    body = {"BizToken": token, "RuleId": cfg["FACEID_RULE_ID"], "InfoType": "1"}
    return _call(sim, cfg, "GetDetectInfoEnhanced", body)


def _error(response: dict) -> str:
    assert set(response) == {"Error", "RequestId"} and response["Error"]["Message"]
    return response["Error"]["Code"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"secret_key": "not-the-key"}, "AuthFailure.SignatureFailure"),
        ({"service": "sms"}, "AuthFailure.SignatureFailure"),
        ({"host": "127.0.0.1:1"}, "AuthFailure.SignatureFailure"),  # signed for another port
        ({"secret_id": "AKIDnobody"}, "AuthFailure.SecretIdNotFound"),
        ({"timestamp": int(time.time()) - 301}, "AuthFailure.SignatureExpire"),
        ({"action": "LivenessCompare"}, "InvalidAction"),
        ({"version": "2021-01-11"}, "NoSuchVersion"),
        ({"region": "eu-frankfurt"}, "UnsupportedRegion"),
    ],
)
def test_badly_signed_or_addressed_requests_are_refused(faceid_sim, faceid, cfg, overrides, code):
    body = {"RuleId": cfg["FACEID_RULE_ID"], "IdCard": ID_NUMBER, "Name": NAME}
    overrides = dict(overrides)
    action = overrides.pop("action", "DetectAuth")
    assert _error(_call(faceid_sim, cfg, action, body, **overrides)) == code
    assert faceid.calls()["errors"] == {code: 1}


def test_a_body_changed_after_signing_is_refused(faceid_sim, faceid, cfg):
    signed = json.dumps({"RuleId": cfg["FACEID_RULE_ID"], "IdCard": ID_NUMBER, "Name": NAME}).encode()
    headers = tc3.sign_request(
        secret_id=cfg["TENCENT_SECRET_ID"], secret_key=cfg["TENCENT_SECRET_KEY"], service="faceid",
        host=f"{faceid_sim.host}:{faceid_sim.port}", action="DetectAuth", version="2018-03-01", body=signed,
    )  # fmt: skip
    resp = httpx.post(faceid_sim.url, content=signed.replace(b'"1"', b'"2"'), headers=headers)
    assert _error(resp.json()["Response"]) == "AuthFailure.SignatureFailure"


def test_detect_auth_answers_a_biz_token_and_url(faceid_sim, faceid, cfg):
    resp = _auth(faceid_sim, cfg, RedirectUrl="https://yiwang.example.gov.cn/back")
    assert set(resp) == {"Url", "BizToken", "RequestId"} and resp["BizToken"] in resp["Url"]
    assert faceid.flow(resp["BizToken"])["performed"] is False


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"RuleId": "42"}, "InvalidParameterValue.RuleIdNotExist"),
        ({"IdCard": None}, "MissingParameter"),
        ({"Name": None}, "MissingParameter"),
        (
            {"IdCard": ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1")},
            "FailedOperation.IdFormatError",
        ),
        ({"IdCard": "11010119800101007x"}, "FailedOperation.IdFormatError"),  # lowercase x is refused
        ({"IdCard": ID_NUMBER[:17]}, "FailedOperation.IdFormatError"),
        # only ASCII digits: full-width (checksum otherwise right), superscript, Arabic-Indic
        ({"IdCard": FULL_WIDTH_ID}, "FailedOperation.IdFormatError"),
        ({"IdCard": "1101011990030785\u00b3X"}, "FailedOperation.IdFormatError"),
        ({"IdCard": "\u0661" + ID_NUMBER[1:]}, "FailedOperation.IdFormatError"),
        ({"Name": "名" * 33}, "FailedOperation.NameFormatError"),
        ({"Extra": "x" * 1025}, "InvalidParameterValue"),
        ({"Nickname": "x"}, "UnknownParameter"),
    ],
)
def test_detect_auth_validates_its_parameters(faceid_sim, faceid, cfg, fields, code):
    assert _error(_auth(faceid_sim, cfg, **fields)) == code


def test_malformed_json_body(faceid_sim, faceid, cfg):
    assert _error(_call(faceid_sim, cfg, "DetectAuth", b"{not json")) == "FailedOperation.JsonParseFail"


def test_results_never_carry_images_even_when_asked(faceid_sim, faceid, cfg):
    token = _auth(faceid_sim, cfg)["BizToken"]
    faceid.perform(token, "pass")
    for info_type in ("0", "134"):
        resp = _call(faceid_sim, cfg, "GetDetectInfoEnhanced",
                     {"BizToken": token, "RuleId": cfg["FACEID_RULE_ID"], "InfoType": info_type})  # fmt: skip
        assert set(resp) == {"Text", "RequestId"} and resp["Text"]["ErrCode"] == 0
    assert faceid.calls()["image_requests"] == 2


def test_text_fields_are_exactly_the_sdk_model(faceid_sim, faceid, cfg):
    token = _auth(faceid_sim, cfg)["BizToken"]
    faceid.perform(token, "other_person")
    resp = _info(faceid_sim, cfg, token)
    model = models.GetDetectInfoEnhancedResponse()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SDK warns about fields it does not know
        model._deserialize(resp)
    text = model.Text
    assert (text.ErrCode, text.LiveStatus, text.Comparestatus, text.Extra) == (2016, 0, 2016, "V1")
    assert float(text.Sim) < 70 and text.LivenessDetail[0].Errcode == 2016


def test_pending_text_has_null_verdict(faceid_sim, faceid, cfg):
    token = _auth(faceid_sim, cfg)["BizToken"]
    text = _info(faceid_sim, cfg, token)["Text"]
    assert text["ErrCode"] is None and text["LiveStatus"] is None and text["Sim"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"BizToken": "nope"}, "InvalidParameterValue.BizTokenIllegal"),
        ({"RuleId": "42"}, "InvalidParameterValue.RuleIdNotExist"),
        ({"BizToken": None}, "MissingParameter"),
        ({"IsEncryptResponse": True}, "UnsupportedOperation"),
    ],
)
def test_get_detect_info_refusals(faceid_sim, faceid, cfg, body, code):
    token = _auth(faceid_sim, cfg)["BizToken"]
    request = {"BizToken": token, "RuleId": cfg["FACEID_RULE_ID"], "InfoType": "1"} | body
    request = {k: v for k, v in request.items() if v is not None}
    assert _error(_call(faceid_sim, cfg, "GetDetectInfoEnhanced", request)) == code


def test_down_answers_503_and_injected_errors_come_in_order(faceid_sim, faceid, cfg):
    faceid.faults(errors=["RequestLimitExceeded", "InternalError"])
    assert _error(_auth(faceid_sim, cfg)) == "RequestLimitExceeded"
    assert _error(_auth(faceid_sim, cfg)) == "InternalError"
    assert "BizToken" in _auth(faceid_sim, cfg)
    faceid.faults(down=True)
    assert httpx.post(faceid_sim.url, content=b"{}").status_code == 503


def test_control_api_refusals(faceid_sim, faceid, cfg):
    token = _auth(faceid_sim, cfg)["BizToken"]
    sim = faceid_sim.url + "_sim/"
    assert httpx.post(sim + "face/perform", json={"ref": token, "outcome": "smile"}).status_code == 400
    assert httpx.post(sim + "face/perform", json={"ref": "nope", "outcome": "pass"}).status_code == 404
    assert faceid.perform(token, "cancel") == 17
    assert httpx.post(sim + "face/perform", json={"ref": token, "outcome": "pass"}).status_code == 409
    assert httpx.post(sim + "face/auto", json={"outcome": "smile"}).status_code == 400
    assert httpx.post(sim + "faults", json={"flaky": True}).status_code == 400
    assert httpx.post(sim + "people", json={"name": NAME}).status_code == 400
    faceid.reset()
    assert httpx.get(sim + f"face/{token}").status_code == 404 and faceid.calls()["total"] == 0
