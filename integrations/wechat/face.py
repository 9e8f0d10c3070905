"""WeChat face verification 2.0 (城市服务 face identify) as a real-name FaceProvider.

Flow: `start` calls getverifyid {out_seq_no, cert_info, openid} and hands the phone
{"verify_id"} for wx.requestFacialVerify; `result` calls queryverifyinfo {verify_id,
out_seq_no, cert_hash, openid}. Passed only when errcode == 0 and verify_ret == 10000.
Face 1.0 (getinfo / verify_result) is being retired by WeChat and is deliberately absent.

Calls go through WechatClient, so the shared access token (Redis), its refresh-and-retry and
the errcode classification are the same as for login and messages. Timeout: WECHAT_TIMEOUT.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

from core.masking import redact_text
from integrations.realname.base import (
    REASON_CANCELLED,
    REASON_EXPIRED,
    REASON_ID_INVALID,
    REASON_IDENTITY_MISMATCH,
    REASON_LIVENESS_FAILED,
    REASON_REJECTED,
    FaceResult,
    FaceStart,
    Person,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)
from integrations.wechat.client import WechatClient
from integrations.wechat.errors import WechatApiError, WechatRetryableError

log = logging.getLogger(__name__)

METHOD = "wechat_face"
CERT_TYPE = "IDENTITY_CARD"
DEFAULT_EXPIRES_IN = 3600  # getverifyid's documented default lifetime of a verify_id

VERIFY_PASSED = 10000
VERIFY_PENDING = 0  # our reading of "not finished yet": WeChat documents no value for it
ERR_INVALID_VERIFY_ID = 84001  # unknown, or expired before the face was done

# verify_ret → reason. 10003 covers "not this person" and "name + ID not a registered resident":
# WeChat does not tell the two apart.
_REASONS = {
    10001: REASON_ID_INVALID,  # 参数错误: the ID number is malformed
    10002: REASON_LIVENESS_FAILED,  # 人脸特征检测失败
    10003: REASON_IDENTITY_MISMATCH,  # 身份证号不匹配
    10004: REASON_IDENTITY_MISMATCH,  # 比对人脸信息不匹配
}
_CANCELLED = frozenset({90002, 90003, 90004, 90005, 90006, 90024})  # user quit at some step
_BAD_CAPTURE = frozenset({90011, 90013, 90014, 90023})  # face data invalid / face tracking lost

_OUT_SEQ_NO = re.compile(r"[A-Za-z0-9_-]{5,32}")  # getverifyid's rule for out_seq_no


def cert_hash(cert_name: str, cert_no: str, cert_type: str = CERT_TYPE) -> str:
    """Lowercase hex SHA-256 of "cert_type=B64&cert_name=B64&cert_no=B64" (standard base64 of UTF-8)."""

    def b64(value: str) -> str:
        return base64.b64encode(value.encode("utf-8")).decode("ascii")

    text = f"cert_type={b64(cert_type)}&cert_name={b64(cert_name)}&cert_no={b64(cert_no)}"
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def reason_for(verify_ret: int) -> str:
    """The normalised reason of a final, failed verify_ret."""
    if verify_ret in _REASONS:
        return _REASONS[verify_ret]
    if verify_ret in _CANCELLED:
        return REASON_CANCELLED
    if verify_ret in _BAD_CAPTURE:
        return REASON_LIVENESS_FAILED
    # Other 900xx: device, permission, network or SDK errors on the phone; anything else unknown.
    return REASON_REJECTED


class WechatFaceProvider:
    """FaceProvider over WeChat face verification 2.0 for mini-program users (needs ctx.openid)."""

    method = METHOD

    def __init__(self, wechat: WechatClient) -> None:
        self._wechat = wechat

    def start(self, person: Person, ctx: StartContext) -> FaceStart:
        """getverifyid: register the verification; the phone gets {"verify_id"}."""
        openid = self._check_context(ctx)
        body = {
            "out_seq_no": ctx.out_ref,
            "cert_info": {"cert_type": CERT_TYPE, "cert_name": person.name, "cert_no": person.id_number},
            "openid": openid,
        }
        result = self._call("getverifyid", self._wechat.face_get_verify_id, body)
        verify_id, expires_in = result.get("verify_id"), result.get("expires_in", DEFAULT_EXPIRES_IN)
        if not isinstance(verify_id, str) or not 0 < len(verify_id) <= 256:
            raise _malformed("getverifyid has no usable verify_id")
        if not _is_int(expires_in) or expires_in <= 0:
            raise _malformed("getverifyid has no usable expires_in")
        payload = {"verify_id": verify_id}  # exactly what wx.requestFacialVerify takes
        return FaceStart(provider_ref=verify_id, client_payload=payload, expires_in=expires_in)

    def result(self, person: Person, ctx: StartContext, provider_ref: str) -> FaceResult:
        """queryverifyinfo: passed, pending, or a final failure with its reason."""
        openid = self._check_context(ctx)
        body = {
            "verify_id": provider_ref,
            "out_seq_no": ctx.out_ref,
            "cert_hash": cert_hash(person.name, person.id_number),
            "openid": openid,
        }
        try:
            result = self._call("queryverifyinfo", self._wechat.face_query_verify_info, body)
        except ProviderFailed as exc:
            if exc.code != str(ERR_INVALID_VERIFY_ID):
                raise
            # WeChat forgets a verify_id nobody used within expires_in; ours was real, so it expired.
            return FaceResult(passed=False, reason=REASON_EXPIRED, provider_code=exc.code)
        errcode, verify_ret = result.get("errcode", 0), result.get("verify_ret")
        if not _is_int(verify_ret) or not _is_int(errcode):
            raise _malformed("queryverifyinfo has no usable verify_ret")
        if errcode == 0 and verify_ret == VERIFY_PASSED:
            return FaceResult(passed=True, provider_code=str(verify_ret))
        if errcode == 0 and verify_ret == VERIFY_PENDING:
            return FaceResult(passed=False, pending=True)
        return FaceResult(passed=False, reason=reason_for(verify_ret), provider_code=str(verify_ret))

    # -- plumbing --------------------------------------------------------------------------

    @staticmethod
    def _check_context(ctx: StartContext) -> str:
        if not ctx.openid:
            raise ProviderFailed(METHOD, "openid_required", "face verification 2.0 needs the openid")
        # Checked here so a bad reference never costs a call (WeChat would answer 40097).
        if not _OUT_SEQ_NO.fullmatch(ctx.out_ref or ""):
            raise ProviderFailed(METHOD, "invalid_out_ref", "out_seq_no must be 5-32 of [A-Za-z0-9_-]")
        return ctx.openid

    @staticmethod
    def _call(action: str, fn: Callable[[dict], dict], body: dict) -> dict:
        """Run one WechatClient call and turn its typed failures into provider errors."""
        try:
            return fn(body)
        except WechatRetryableError as exc:
            if exc.errmsg == "response is not JSON":  # an answer we cannot read will not improve
                raise _malformed(f"{action} answered without JSON") from exc
            code = _unavailable_code(exc)
            log.warning("wechat face call unavailable", extra={"action": action, "code": code})
            raise ProviderUnavailable(METHOD, code, f"{action}: {redact_text(exc.errmsg)[:120]}") from exc
        except WechatApiError as exc:
            code = str(exc.errcode) if exc.errcode is not None else f"http_{exc.http_status}"
            if exc.errcode != ERR_INVALID_VERIFY_ID:
                log.error("wechat face call refused", extra={"action": action, "code": code})
            raise ProviderFailed(METHOD, code, f"{action}: {redact_text(exc.errmsg)[:120]}") from exc


def _unavailable_code(exc: WechatRetryableError) -> str:
    if exc.errcode is not None:
        return str(exc.errcode)
    if exc.http_status is not None:
        return f"http_{exc.http_status}"
    return {"timeout": "timeout", "connection failed": "connection_failed"}.get(exc.errmsg, "unavailable")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _malformed(message: str) -> ProviderFailed:
    log.error("wechat face answer malformed", extra={"detail": message})
    return ProviderFailed(METHOD, "malformed_response", message)
