"""TC3-HMAC-SHA256: our signer and verifier against the official SDK, and every refusal."""

from __future__ import annotations

import json
import time

import pytest
from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import sms_client

from integrations.tencentcloud import tc3

SECRET_ID = "AKIDtestsecretid000000000000000000"
SECRET_KEY = "test-secret-key"
KEYS = {SECRET_ID: SECRET_KEY}
HOST = "127.0.0.1:9102"
BODY = json.dumps({"PhoneNumberSet": ["+8613800138000"], "TemplateId": "100001"}).encode()


def _sdk_request(method: str = "POST", host: str = HOST) -> RequestInternal:
    """A request signed by the official SDK (its private builder, which SendSms uses)."""
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=host, reqMethod=method))
    client = sms_client.SmsClient(credential.Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou", profile)
    req = RequestInternal(host, method, "/", header={})
    client._build_req_with_tc3_signature("SendSms", {"PhoneNumberSet": ["+8613800138000"]}, req)
    return req


def _verify(headers, body=BODY, *, method="POST", query="", now=None, keys=KEYS):
    return tc3.verify_request(
        method=method, query=query, headers=headers, body=body, service="sms",
        secret_keys=keys, now=time.time() if now is None else now,
    )  # fmt: skip


def _signed(**overrides):
    kwargs = dict(
        secret_id=SECRET_ID, secret_key=SECRET_KEY, service="sms", host=HOST,
        action="SendSms", version="2021-01-11", region="ap-guangzhou", body=BODY,
    )  # fmt: skip
    kwargs.update(overrides)
    return tc3.sign_request(**kwargs)


def _code(exc_info) -> str:
    return exc_info.value.code


def test_requests_signed_by_the_official_sdk_verify():
    req = _sdk_request()
    verified = _verify(req.header, req.data.encode())
    assert (verified.secret_id, verified.action, verified.version, verified.region) == (
        SECRET_ID, "SendSms", "2021-01-11", "ap-guangzhou",
    )  # fmt: skip


def test_get_requests_signed_by_the_sdk_verify_over_the_query_string():
    req = _sdk_request("GET")
    assert _verify(req.header, b"", method="GET", query=req.data).action == "SendSms"
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(req.header, b"", method="GET", query=req.data.replace("8613800138000", "8613900139000"))
    assert _code(exc) == "AuthFailure.SignatureFailure"


def test_our_signature_matches_the_sdk_signature_byte_for_byte():
    req = _sdk_request()
    ours = _signed(body=req.data.encode(), timestamp=int(req.header["X-TC-Timestamp"]))
    assert ours["Authorization"] == req.header["Authorization"]


def test_extra_signed_headers_are_honoured():
    headers = _signed(extra_signed={"X-TC-Action": "SendSms"})
    assert "SignedHeaders=content-type;host;x-tc-action" in headers["Authorization"]
    assert _verify(headers).action == "SendSms"
    headers["X-TC-Action"] = "PullSmsSendStatus"  # a signed header changed after signing
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(headers)
    assert _code(exc) == "AuthFailure.SignatureFailure"


def test_tampered_body_fails():
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(_signed(), BODY.replace(b"100001", b"100002"))
    assert _code(exc) == "AuthFailure.SignatureFailure"


def test_host_includes_the_port():
    headers = _signed(host="127.0.0.1:9103")
    headers["Host"] = HOST  # delivered to another port than the one signed
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(headers)
    assert _code(exc) == "AuthFailure.SignatureFailure"


def test_wrong_secret_key_fails():
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(_signed(secret_key="not-the-key"))
    assert _code(exc) == "AuthFailure.SignatureFailure"


def test_unknown_secret_id():
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(_signed(secret_id="AKIDunknown"))
    assert _code(exc) == "AuthFailure.SecretIdNotFound"


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_timestamps_more_than_five_minutes_off_expire(skew):
    now = time.time()
    headers = _signed(timestamp=int(now) + skew)
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(headers, now=now)
    assert _code(exc) == "AuthFailure.SignatureExpire"


def test_timestamps_within_five_minutes_pass():
    now = int(time.time())
    assert _verify(_signed(timestamp=now - 299), now=now).timestamp == now - 299
    assert _verify(_signed(timestamp=now + 299), now=now).timestamp == now + 299


def test_scope_date_must_be_the_utc_date_of_the_timestamp():
    # A client that formats the date in Beijing time signs with tomorrow's date after 16:00 UTC.
    ts = 1_763_830_800  # 2025-11-22 17:00 UTC = 2025-11-23 01:00 Beijing
    headers = _signed(timestamp=ts)
    canonical = tc3.canonical_request(
        method="POST", query="", headers={k.lower(): v for k, v in headers.items()},
        signed_headers=["content-type", "host"], hashed_payload=tc3.payload_hash(BODY),
    )  # fmt: skip
    sig = tc3.signature(SECRET_KEY, service="sms", timestamp=ts, date="2025-11-23", canonical=canonical)
    headers["Authorization"] = (
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/2025-11-23/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={sig}"
    )
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(headers, now=ts)
    assert _code(exc) == "AuthFailure.SignatureFailure"
    assert _verify(_signed(timestamp=ts), now=ts).timestamp == ts


def test_signature_for_another_service_fails():
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(_signed(service="faceid"))
    assert _code(exc) == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize(
    ("header", "name"),
    [("X-TC-Action", "Action"), ("X-TC-Version", "Version"), ("X-TC-Timestamp", "Timestamp")],
)
def test_missing_common_parameters(header, name):
    headers = _signed()
    del headers[header]
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(headers)
    assert _code(exc) == "MissingParameter" and name in exc.value.message


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer abc",
        "TC3-HMAC-SHA1 Credential=AKID/2025-01-01/sms/tc3_request, "
        "SignedHeaders=content-type;host, Signature=ab",
        "TC3-HMAC-SHA256 Credential=AKID/2025-01-01/sms, SignedHeaders=content-type;host, Signature=ab",
        "TC3-HMAC-SHA256 Credential=AKID/2025-01-01/sms/tc3_request, SignedHeaders=content-type, Signature=a",
    ],
)
def test_malformed_authorization(authorization):
    headers = _signed()
    headers["Authorization"] = authorization
    with pytest.raises(tc3.Tc3Error) as exc:
        _verify(headers)
    assert _code(exc) == "AuthFailure.InvalidAuthorization"


def test_error_envelope_shape():
    body = tc3.error_envelope("AuthFailure.SignatureFailure", "bad", "req-1")
    assert body == {
        "Response": {
            "Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"},
            "RequestId": "req-1",
        }
    }
