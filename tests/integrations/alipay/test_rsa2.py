"""RSA2 helpers: signing string, exact response-text extraction, key formats, timestamps."""

from __future__ import annotations

import pytest

from integrations.alipay import dev_keys, rsa2

APP_KEY = rsa2.load_private_key(dev_keys.APP_PRIVATE_KEY)
APP_PUBLIC = rsa2.load_public_key(dev_keys.APP_PUBLIC_KEY)


def test_signing_string_sorts_and_drops_sign_and_empty_values():
    params = {"b": "2", "a": "1", "sign": "x", "empty": "", "c": "中 文&="}
    assert rsa2.signing_string(params) == "a=1&b=2&c=中 文&="


def test_sign_and_verify_round_trip_and_tampering():
    params = {"app_id": "1", "biz_content": '{"k":"张三"}', "sign_type": "RSA2"}
    params["sign"] = rsa2.sign_params(params, APP_KEY)
    assert rsa2.verify_params(params, APP_PUBLIC)
    assert not rsa2.verify_params(params | {"biz_content": '{"k":"李四"}'}, APP_PUBLIC)
    assert not rsa2.verify_params(params | {"sign": "not base64!"}, APP_PUBLIC)


def test_the_exact_member_text_is_extracted():
    body = (' { "a_response" : {"code":"10000", "msg" : "Success","x":"\\u5f20\\/"} ,'
            '"note":"\\"a_response\\":{}", "sign":"abc" } ')  # fmt: skip
    members = rsa2.top_level_members(body)
    assert members["a_response"][0] == '{"code":"10000", "msg" : "Success","x":"\\u5f20\\/"}'
    assert members["a_response"][1]["x"] == "张/"
    assert members["sign"] == ('"abc"', "abc") and set(members) == {"a_response", "note", "sign"}


@pytest.mark.parametrize(
    "body", ["[]", "", '{"a":1', '{"a":1} trailing', '{"a":1,"a":2}', '{"a" 1}', '{"a":1,}']
)
def test_malformed_bodies_are_refused(body):
    with pytest.raises(ValueError):
        rsa2.top_level_members(body)


def test_bare_base64_keys_as_the_alipay_console_shows_them_load():
    body = "".join(line for line in dev_keys.APP_PUBLIC_KEY.splitlines() if not line.startswith("-----"))
    assert rsa2.load_public_key(body).public_numbers() == APP_PUBLIC.public_numbers()
    with pytest.raises(rsa2.RsaKeyError):
        rsa2.load_private_key("not a key")


def test_timestamps_are_beijing_time():
    assert rsa2.format_timestamp(0) == "1970-01-01 08:00:00"
    assert rsa2.parse_timestamp("1970-01-01 08:00:00") == 0
