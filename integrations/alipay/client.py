"""Alipay identity verification (支付宝身份验证, alipay.user.certify.open.*) as a FaceProvider.

Flow: `start` calls alipay.user.certify.open.initialize {outer_order_no, biz_code "FACE",
identity_param{CERT_INFO, IDENTITY_CARD, cert_name, cert_no}, merchant_config{return_url}} and
hands the phone the signed page URL of alipay.user.certify.open.certify {certify_id} (a redirect
the citizen's browser opens, never a server call); `result` calls alipay.user.certify.open.query
{certify_id}. Requests are RSA2-signed with the application key; every answer must carry a valid
RSA2 signature of Alipay's platform key over the exact `*_response` text (integrations.alipay.rsa2).

Facts this relies on (opendocs.alipay.com api_2 + the public-error table 105806, SDK response
models, and answers by Alipay support on developer.aliyun.com):
- Gateway codes: 10000 ok; 20000 service unavailable (isp.unknow-error, aop.unknow-error) →
  ProviderUnavailable; 20001 token, 40001 missing parameter, 40002 invalid parameter (e.g.
  isv.invalid-signature, isv.invalid-app-id, isv.invalid-timestamp), 40006 insufficient
  permission → ProviderFailed; 40004 business failure with a sub_code.
- initialize 40004: ILLEGAL_ARGUMENT_FORMAT (参数异常: a field empty or malformed, unknown
  biz_code, outer_order_no longer than 32) → ProviderFailed.
- query 40004: CERTIFY_ID_EXPIRED (认证已失效) is a final verdict → FaceResult(expired);
  OPEN_CERTIFY_BILL_NOT_EXIST (无效的certify_id: not this app's, or never issued) →
  ProviderFailed. A certify_id is valid for 23 hours; a performed one can be queried for 3 months.
- query 10000: passed "T" is the only pass; "F" is "not passed" (integrations.md: passed T/F,
  fail_reason). Alipay support confirms the query gives no reason by default: fail_reason is an
  extension field Alipay enables per merchant, with unpublished codes (one observed value:
  "Z1147"). So "F" is final either way: with a fail_reason mapped by FAIL_REASONS (our
  assumption, shared with the simulator) or REASON_REJECTED for any other code; without one,
  REASON_REJECTED (the generic "认证未通过"). Reading a bare "F" as "not done yet" left every
  failed face of a merchant without the extension pending for 23 hours. Alipay also answers "F"
  for a flow the citizen has not finished (or left), and nothing in the answer tells the two
  apart: the phone asks for the result once Alipay has sent the citizen back to return_url
  (it does so after a pass and after a failure), and an earlier question ends the attempt.
- material_info may carry face images when a merchant asks for them; yiwang never does (and
  sends face_reserve_strategy "never"), so a query answer carrying material is refused.
- Alipay omits `sign` on some gateway errors (e.g. isv.invalid-app-id); an unsigned answer is
  only ever turned into an exception, never into a success or a verdict.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests

from integrations.alipay import dev_keys, rsa2
from integrations.http_pool import SessionPool
from integrations.realname.base import (
    REASON_EXPIRED,
    REASON_IDENTITY_MISMATCH,
    REASON_LIVENESS_FAILED,
    REASON_NO_RECORD,
    REASON_REJECTED,
    FaceResult,
    FaceStart,
    Person,
    ProviderError,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)

log = logging.getLogger(__name__)

METHOD = "alipay_face"
INITIALIZE = "alipay.user.certify.open.initialize"
CERTIFY = "alipay.user.certify.open.certify"
QUERY = "alipay.user.certify.open.query"
CERTIFY_ID_TTL = 23 * 3600  # seconds a certify_id can be used for the face flow
BIZ_CODE = "FACE"  # 多因子人脸认证

# fail_reason → reason. Alipay does not publish these codes; they follow the result codes of
# Ant Group's face verification (cloudauth SubCode) and the simulator answers the same ones.
FAIL_REASONS: dict[str, str] = {
    "201": REASON_IDENTITY_MISMATCH,  # name and ID number do not match
    "202": REASON_NO_RECORD,  # no such identity in the authoritative source
    "203": REASON_NO_RECORD,  # no usable photo on record for the identity
    "204": REASON_IDENTITY_MISMATCH,  # the live face is not the identity's face
    "205": REASON_LIVENESS_FAILED,  # liveness risk: photo, screen, mask, no face
}
EXPIRED_SUB_CODE = "CERTIFY_ID_EXPIRED"
# Worth another attempt soon: the platform's own failures.
_RETRYABLE_SUB_CODES = frozenset({"isp.unknow-error", "aop.unknow-error", "SYSTEM_ERROR", "isp.system-error"})


def gateway_error(data: Mapping[str, Any]) -> ProviderError:
    """The typed failure for a non-10000 answer; Alipay's sub_msg is dropped (it may echo input)."""
    code = str(data.get("code") or "")
    sub_code = str(data.get("sub_code") or "")
    if code == "20000" or sub_code in _RETRYABLE_SUB_CODES:
        return ProviderUnavailable(METHOD, sub_code or code, f"gateway code {code}")
    return ProviderFailed(METHOD, sub_code or code or "malformed_response", f"gateway code {code}")


def _has_material(value: Any) -> bool:
    """Whether material_info carries anything beyond an empty object."""
    if value in (None, "", {}, []):
        return False
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return True
        return value not in (None, "", {}, [])
    return True


class AlipayFaceProvider:
    """Alipay identity verification over the open-platform gateway, RSA2-signed both ways."""

    method = METHOD

    def __init__(
        self,
        *,
        gateway: str,
        app_id: str,
        app_private_key: str,
        alipay_public_key: str,
        return_url: str,
        timeout: float,
    ) -> None:
        try:
            self._app_key = rsa2.load_private_key(app_private_key)
            self._alipay_key = rsa2.load_public_key(alipay_public_key)
        except rsa2.RsaKeyError as exc:
            raise ProviderFailed(METHOD, "config_error", str(exc)) from None
        self.gateway = gateway
        self.app_id = app_id
        self.return_url = return_url
        self.timeout = timeout
        # Pooled keep-alive connections per thread (integrations/http_pool.py).
        self._http = SessionPool()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> AlipayFaceProvider:
        """Build from app config; without ALIPAY_APP_PRIVATE_KEY / ALIPAY_PUBLIC_KEY the development keys."""
        return cls(
            gateway=cfg["ALIPAY_GATEWAY"],
            app_id=str(cfg["ALIPAY_APP_ID"]),
            app_private_key=cfg.get("ALIPAY_APP_PRIVATE_KEY") or dev_keys.APP_PRIVATE_KEY,
            alipay_public_key=cfg.get("ALIPAY_PUBLIC_KEY") or dev_keys.PLATFORM_PUBLIC_KEY,
            return_url=cfg["ALIPAY_RETURN_URL"],
            timeout=float(cfg["PROVIDER_TIMEOUT"]),
        )

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()

    def _signed(self, method: str, biz: Mapping[str, Any]) -> dict[str, str]:
        """Common parameters + biz_content, signed; the timestamp is wall time, as Alipay checks it."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": rsa2.format_timestamp(time.time()),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = rsa2.sign_params(params, self._app_key)
        return params

    def certify_url(self, certify_id: str) -> str:
        """The signed page URL (GET) the citizen's browser opens to do the face in Alipay."""
        return self.gateway + "?" + urlencode(self._signed(CERTIFY, {"certify_id": certify_id}))

    def _call(self, method: str, biz: Mapping[str, Any]) -> dict[str, Any]:
        """POST to the gateway and return the verified `*_response` member; raise ProviderError."""
        params = self._signed(method, biz)
        # As the official SDKs do: common parameters in the query string, biz_content in the form
        # body, which also keeps the name and ID number out of URLs that HTTP libraries log.
        query = {k: v for k, v in params.items() if k != "biz_content"}
        try:
            res = self._http.get().post(
                self.gateway, params=query, data={"biz_content": params["biz_content"]},
                timeout=self.timeout, allow_redirects=False,
            )  # fmt: skip
        except requests.Timeout:
            raise ProviderUnavailable(METHOD, "timeout", f"{method} over {self.timeout}s") from None
        except requests.RequestException as exc:
            raise ProviderUnavailable(METHOD, "connection_failed", type(exc).__name__) from None
        if res.status_code >= 500:
            raise ProviderUnavailable(METHOD, f"http_{res.status_code}", method)
        if res.status_code != 200:
            raise ProviderFailed(METHOD, f"http_{res.status_code}", method)
        try:
            members = rsa2.top_level_members(res.content.decode("utf-8"))
        except ValueError:
            raise ProviderFailed(METHOD, "malformed_response", f"{method}: not a JSON object") from None
        entry = members.get(rsa2.response_member(method)) or members.get("error_response")
        if entry is None or not isinstance(entry[1], dict):
            raise ProviderFailed(METHOD, "malformed_response", f"{method}: no response member")
        text, data = entry
        code = str(data.get("code") or "")
        signature = members.get("sign")
        if signature is None:
            if code in ("10000", "40004"):  # Alipay signs these: an unsigned one is not from Alipay
                raise ProviderFailed(METHOD, "unsigned_response", method)
            raise gateway_error(data)
        if not isinstance(signature[1], str) or not rsa2.verify(text, signature[1], self._alipay_key):
            log.warning("alipay response signature invalid", extra={"alipay_method": method})
            raise ProviderFailed(METHOD, "bad_response_signature", method)
        return data

    def start(self, person: Person, ctx: StartContext) -> FaceStart:
        """initialize → certify_id; the phone gets the signed certify page URL."""
        biz = {
            "outer_order_no": ctx.out_ref,
            "biz_code": BIZ_CODE,
            "identity_param": {
                "identity_type": "CERT_INFO",
                "cert_type": "IDENTITY_CARD",
                "cert_name": person.name,
                "cert_no": person.id_number.upper(),  # a lower-case x is refused as malformed
            },
            # "never": Alipay keeps no live face image (PIPL data minimisation).
            "merchant_config": {
                "return_url": ctx.return_url or self.return_url,
                "face_reserve_strategy": "never",
            },
        }
        data = self._call(INITIALIZE, biz)
        if data.get("code") != "10000":
            err = gateway_error(data)
            log.warning("alipay initialize refused", extra={"alipay_code": err.code, "out_ref": ctx.out_ref})
            raise err
        certify_id = data.get("certify_id")
        if not isinstance(certify_id, str) or not certify_id:
            raise ProviderFailed(METHOD, "malformed_response", "initialize answered without certify_id")
        return FaceStart(
            provider_ref=certify_id,
            client_payload={"certify_id": certify_id, "certify_url": self.certify_url(certify_id)},
            expires_in=CERTIFY_ID_TTL,
            provider_request_id=certify_id,
        )

    def result(self, person: Person, ctx: StartContext, provider_ref: str) -> FaceResult:
        """query → passed, or the reason it did not pass (the identity was bound at initialize).
        Never pending: Alipay's "F" does not tell an unfinished flow from a failed one."""
        data = self._call(QUERY, {"certify_id": provider_ref})
        code = data.get("code")
        if code == "40004" and data.get("sub_code") == EXPIRED_SUB_CODE:
            return FaceResult(passed=False, reason=REASON_EXPIRED, provider_code=EXPIRED_SUB_CODE,
                              provider_request_id=provider_ref)  # fmt: skip
        if code != "10000":
            err = gateway_error(data)
            log.warning("alipay query refused", extra={"alipay_code": err.code, "out_ref": ctx.out_ref})
            raise err
        if _has_material(data.get("material_info")):
            raise ProviderFailed(METHOD, "image_data_received", "query answered with material_info")
        passed = data.get("passed")
        if isinstance(passed, list) and len(passed) == 1:  # older SDK models declare a list
            passed = passed[0]
        if passed == "T":
            return FaceResult(passed=True, provider_code="T", provider_request_id=provider_ref)
        if passed != "F":
            raise ProviderFailed(METHOD, "malformed_response", "query answered without passed T/F")
        fail_reason = data.get("fail_reason")
        if not fail_reason:  # not passed, no reason given (the default without the extension)
            return FaceResult(
                passed=False, reason=REASON_REJECTED, provider_code="F", provider_request_id=provider_ref
            )
        fail_reason = str(fail_reason)
        return FaceResult(
            passed=False,
            reason=FAIL_REASONS.get(fail_reason, REASON_REJECTED),
            provider_code=f"F:{fail_reason}",
            provider_request_id=provider_ref,
        )
