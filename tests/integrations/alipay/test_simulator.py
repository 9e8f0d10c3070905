"""The Alipay simulator spoken to by hand: gateway checks, RSA2 both ways, control API."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from integrations.alipay import dev_keys, rsa2
from integrations.realname.people import DEMO_PEOPLE

APP_KEY = rsa2.load_private_key(dev_keys.APP_PRIVATE_KEY)
PLATFORM = rsa2.load_public_key(dev_keys.PLATFORM_PUBLIC_KEY)
INIT = "alipay.user.certify.open.initialize"
QUERY = "alipay.user.certify.open.query"
NAME, ID_NUMBER = DEMO_PEOPLE[0]


def _biz(order_no: str = "ORDER0001", **changes) -> dict:
    biz = {
        "outer_order_no": order_no,
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD",
                           "cert_name": NAME, "cert_no": ID_NUMBER},
        "merchant_config": {"return_url": "https://yiwang.example.gov.cn/identity/return"},
    }  # fmt: skip
    biz.update(changes)
    return biz


def _params(method: str, biz: dict, *, key=APP_KEY, **overrides) -> dict:
    params = {
        "app_id": "2021000000000001", "method": method, "format": "JSON", "charset": "utf-8",
        "sign_type": "RSA2", "timestamp": rsa2.format_timestamp(time.time()), "version": "1.0",
        "biz_content": json.dumps(biz, ensure_ascii=False),
    }  # fmt: skip
    params.update(overrides)
    params["sign"] = rsa2.sign_params(params, key)
    return params


@pytest.fixture
def gateway(alipay_sim, alipay) -> str:
    return f"{alipay_sim.url}gateway.do"


def _answer(res: httpx.Response, member: str) -> tuple[dict, bool | None]:
    """The response member and whether its signature verifies (None when unsigned)."""
    assert res.status_code == 200
    members = rsa2.top_level_members(res.text)
    text, data = members[member]
    if "sign" not in members:
        return data, None
    return data, rsa2.verify(text, members["sign"][1], PLATFORM)


def test_a_hand_made_initialize_gets_a_signed_certify_id(gateway):
    res = httpx.post(gateway, data=_params(INIT, _biz()))
    data, signed = _answer(res, "alipay_user_certify_open_initialize_response")
    assert signed is True and data["code"] == "10000" and data["msg"] == "Success"
    assert len(data["certify_id"]) == 32
    # GET with everything in the query string works too, and the same order number is a duplicate.
    res = httpx.get(gateway, params=_params(INIT, _biz()))
    data, signed = _answer(res, "alipay_user_certify_open_initialize_response")
    assert signed and (data["code"], data["sub_code"]) == ("40004", "ILLEGAL_ARGUMENT_FORMAT")


def test_a_tampered_request_is_refused_with_a_signed_answer(gateway, alipay):
    params = _params(INIT, _biz())
    params["biz_content"] = params["biz_content"].replace(NAME, "李四")
    data, signed = _answer(httpx.post(gateway, data=params), "alipay_user_certify_open_initialize_response")
    assert signed is True
    assert (data["code"], data["msg"], data["sub_code"]) == (
        "40002",
        "Invalid Arguments",
        "isv.invalid-signature",
    )
    assert alipay.calls()["errors"] == {"isv.invalid-signature": 1}


@pytest.mark.parametrize(
    ("overrides", "code", "sub_code"),
    [
        ({"charset": "GBK"}, "40002", "isv.invalid-charset"),
        ({"format": "XML"}, "40002", "isv.invalid-format"),
        ({"sign_type": "RSA"}, "40002", "isv.invalid-signature-type"),
        ({"sign_type": ""}, "40001", "isv.missing-signature-type"),
        ({"version": "2.0"}, "40002", "isv.invalid-parameter"),
        ({"version": ""}, "40001", "isv.missing-version"),
        ({"timestamp": ""}, "40001", "isv.missing-timestamp"),
        ({"timestamp": "2026/01/01 00:00:00"}, "40002", "isv.invalid-timestamp"),
        ({"timestamp": rsa2.format_timestamp(time.time() - 20 * 60)}, "40002", "isv.invalid-timestamp"),
    ],
)
def test_common_parameters_are_checked(gateway, overrides, code, sub_code):
    params = _params(INIT, _biz(), **overrides)  # correctly signed: only the parameter is wrong
    data, signed = _answer(httpx.post(gateway, data=params), "alipay_user_certify_open_initialize_response")
    assert signed and (data["code"], data["sub_code"]) == (code, sub_code)


def test_missing_sign_unknown_method_and_unknown_app(gateway):
    params = _params(INIT, _biz())
    del params["sign"]
    data, _ = _answer(httpx.post(gateway, data=params), "alipay_user_certify_open_initialize_response")
    assert (data["code"], data["sub_code"]) == ("40001", "isv.missing-signature")
    data, signed = _answer(httpx.post(gateway, data=_params("alipay.nothing", {})), "error_response")
    assert signed and data["sub_code"] == "isv.invalid-method"
    params = _params(INIT, _biz(), app_id="2021000000009999")
    data, signed = _answer(httpx.post(gateway, data=params), "alipay_user_certify_open_initialize_response")
    assert signed is None and data["sub_code"] == "isv.invalid-app-id"  # Alipay does not sign these


@pytest.mark.parametrize(
    "biz",
    [
        _biz(biz_code="SMART_FACE"),
        _biz(order_no="X" * 33),
        _biz(order_no="ORDER-0001"),
        _biz(
            identity_param={
                "identity_type": "CERT_INFO",
                "cert_type": "IDENTITY_CARD",
                "cert_name": NAME,
                "cert_no": ID_NUMBER[:-1] + "0",
            }
        ),  # fmt: skip
        _biz(
            identity_param={
                "identity_type": "CERT_INFO",
                "cert_type": "PASSPORT",
                "cert_name": NAME,
                "cert_no": ID_NUMBER,
            }
        ),  # fmt: skip
        _biz(merchant_config={}),
        _biz(merchant_config={"return_url": "https://x.example", "face_reserve_strategy": "always"}),
    ],
)
def test_business_parameters_are_checked(gateway, biz):
    data, signed = _answer(
        httpx.post(gateway, data=_params(INIT, biz)), "alipay_user_certify_open_initialize_response"
    )
    assert signed and (data["code"], data["msg"], data["sub_code"]) == (
        "40004", "Business Failed", "ILLEGAL_ARGUMENT_FORMAT",
    )  # fmt: skip


def test_query_answers_pending_then_result_without_material(gateway, alipay):
    init, _ = _answer(
        httpx.post(gateway, data=_params(INIT, _biz())), "alipay_user_certify_open_initialize_response"
    )
    ref = init["certify_id"]
    member = "alipay_user_certify_open_query_response"
    data, signed = _answer(httpx.post(gateway, data=_params(QUERY, {"certify_id": ref})), member)
    assert signed and data == {"code": "10000", "msg": "Success", "passed": "F", "material_info": "{}"}
    alipay.perform(ref, "liveness_fail")
    data, _ = _answer(httpx.post(gateway, data=_params(QUERY, {"certify_id": ref})), member)
    assert (data["passed"], data["fail_reason"], data["material_info"]) == ("F", "205", "{}")
    flow = alipay.flow(ref)
    assert flow["performed"] and NAME not in json.dumps(flow, ensure_ascii=False)


def test_without_the_fail_reason_extension_a_failure_is_a_bare_f(gateway, alipay):
    alipay.fail_reasons(False)
    init, _ = _answer(
        httpx.post(gateway, data=_params(INIT, _biz())), "alipay_user_certify_open_initialize_response"
    )
    alipay.perform(init["certify_id"], "liveness_fail")
    member = "alipay_user_certify_open_query_response"
    data, signed = _answer(
        httpx.post(gateway, data=_params(QUERY, {"certify_id": init["certify_id"]})), member
    )
    assert signed and data == {"code": "10000", "msg": "Success", "passed": "F", "material_info": "{}"}
    assert alipay.flow(init["certify_id"])["fail_reason"] == "205"  # Alipay knows; it does not say


def test_perform_control_errors_and_the_page_form_redirects(gateway, alipay, alipay_sim):
    init, _ = _answer(
        httpx.post(gateway, data=_params(INIT, _biz())), "alipay_user_certify_open_initialize_response"
    )
    ref = init["certify_id"]
    perform = alipay.base_url + "_sim/face/perform"
    assert httpx.post(perform, json={"ref": "nope", "outcome": "pass"}).status_code == 404
    assert httpx.post(perform, json={"ref": ref, "outcome": "smile"}).status_code == 400
    res = httpx.post(perform, data={"ref": ref, "outcome": "pass"})  # the page's button
    assert (
        res.status_code == 302 and res.headers["location"] == "https://yiwang.example.gov.cn/identity/return"
    )
    assert httpx.post(perform, json={"ref": ref, "outcome": "pass"}).status_code == 409
    assert httpx.post(alipay.base_url + "_sim/faults", json={"nonsense": 1}).status_code == 400


def test_reset_forgets_flows_and_faults(gateway, alipay):
    init, _ = _answer(
        httpx.post(gateway, data=_params(INIT, _biz())), "alipay_user_certify_open_initialize_response"
    )
    alipay.faults(latency_ms=5, errors=["20000"])
    alipay.reset()
    assert alipay.faults() == {"down": False, "latency_ms": 0, "errors": [], "bad_response_signature": False}
    data, _ = _answer(
        httpx.post(gateway, data=_params(QUERY, {"certify_id": init["certify_id"]})),
        "alipay_user_certify_open_query_response",
    )
    assert data["sub_code"] == "OPEN_CERTIFY_BILL_NOT_EXIST"
