"""Tencent Cloud FaceID (慧眼) face verification through the official SDK (API 2018-03-01).

Flow: `start` calls DetectAuth {RuleId, IdCard, Name, RedirectUrl, Extra} and hands the phone the
BizToken (and the H5 Url); the citizen runs the FaceID SDK; `result` calls GetDetectInfoEnhanced
{BizToken, RuleId, InfoType "1"} and reads Response.Text. The SDK signs (TC3-HMAC-SHA256) and
sends; this module points it at FACEID_ENDPOINT (the simulator in development and tests,
faceid.tencentcloudapi.com in production) and classifies every outcome.

Facts this relies on (cloud.tencent.com/document/product/1007, SDK models 3.1.179):
- InfoType: 0 = everything (text, ID card images, best frames, video), 1 = text only. yiwang
  needs the verdict, never biometric data, so only "1" is ever requested and a response that
  carries image or video data anyway is refused (ProviderFailed "image_data_received").
- A BizToken is valid for 7,200 s for the flow; results can be pulled for 3 days, after which
  the API answers InvalidParameterValue.BizTokenExpired.
- Text.ErrCode is the final result: 0 passed; null while nobody finished. Non-zero codes (the
  "Plus/增强版 返回码" tables): 14 already completed, 15 token expired, 16 retry limit, 17 flow
  not completed (the citizen left), 1001-1008 and 1201-1303 liveness, 2001-2017 comparison
  (2005 no identity record, 2006 name and ID number do not match, 2016 similarity below the
  threshold of 70), 301 the ID card shown is not the one asked for.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.faceid.v20180301 import faceid_client, models

from core.names import same_name
from integrations.realname.base import (
    REASON_CANCELLED,
    REASON_EXPIRED,
    REASON_ID_INVALID,
    REASON_IDENTITY_MISMATCH,
    REASON_LIVENESS_FAILED,
    REASON_NO_RECORD,
    REASON_REJECTED,
    FaceResult,
    FaceStart,
    IdentityRefused,
    Person,
    ProviderError,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)
from integrations.tencentcloud import transport

log = logging.getLogger(__name__)
# The SDK logs whole requests and responses (names, ID numbers, Text) at DEBUG: keep it above
# that whatever LOG_LEVEL says, so personal data never reaches the logs through it.
_sdk_log = logging.getLogger("tencentcloud_sdk_common")
if _sdk_log.level < logging.INFO:  # NOTSET (0) would inherit DEBUG from the root
    _sdk_log.setLevel(logging.INFO)

METHOD = "tencent_faceid"
API_VERSION = "2018-03-01"
SERVICE = "faceid"
INFO_TYPE_TEXT = "1"  # text only: never best frames, ID card images or video
BIZ_TOKEN_TTL = 7200  # seconds the citizen has to finish the flow
PASS_THRESHOLD = 70.0  # Tencent's fixed similarity threshold (≈ 1/10,000 false accepts)

# Text.ErrCode → reason. Unlisted non-zero codes are REASON_REJECTED.
_TEXT_REASONS: dict[int, str] = {
    14: REASON_REJECTED,  # this BizToken was already used for a verification
    15: REASON_EXPIRED,  # token expired before the citizen finished
    16: REASON_REJECTED,  # retry limit reached
    17: REASON_CANCELLED,  # flow not completed: the citizen left the SDK/page
    301: REASON_IDENTITY_MISMATCH,  # the ID card presented is not the one asked for
    **dict.fromkeys((1002, 1003, 1004, 1005, 1007, 1201, 1202, 1301, 1302, 1303), REASON_LIVENESS_FAILED),
    # 2004 no usable face in the video, 2010/2013 face not fully visible, 2011 suspected
    # non-live, 2012 several faces, 2014 video resolution too low.
    **dict.fromkeys((2004, 2010, 2011, 2012, 2013, 2014), REASON_LIVENESS_FAILED),
    2003: REASON_ID_INVALID,  # ID number malformed
    2005: REASON_NO_RECORD,  # identity not found in the authoritative source
    2006: REASON_IDENTITY_MISMATCH,  # name and ID number do not match
    2007: REASON_NO_RECORD,  # no photo on record for this identity
    2008: REASON_NO_RECORD,
    2015: REASON_IDENTITY_MISMATCH,  # comparison failed: not the same person
    2016: REASON_IDENTITY_MISMATCH,  # similarity below the threshold
}
# ErrCode 1-3: "调用方式出错" — our DetectAuth call was wrong; an operator has to fix it.
_TEXT_CALLER_ERRORS = frozenset({1, 2, 3})

# API errors of GetDetectInfoEnhanced that are a final verdict on this verification.
_API_REASONS: dict[str, str] = {
    "InvalidParameterValue.BizTokenExpired": REASON_EXPIRED,
    "FailedOperation.IdNameMisMatch": REASON_IDENTITY_MISMATCH,
    "FailedOperation.IdNoExistSystem": REASON_NO_RECORD,
    "FailedOperation.IdPhotoNoExist": REASON_NO_RECORD,
    "FailedOperation.IdFormatError": REASON_ID_INVALID,
    "FailedOperation.CompareLowSimilarity": REASON_IDENTITY_MISMATCH,
    "FailedOperation.CompareFail": REASON_IDENTITY_MISMATCH,
}
_LIVENESS_PREFIXES = ("FailedOperation.Livess", "FailedOperation.Silent", "FailedOperation.Action",
                      "FailedOperation.Lip", "FailedOperation.LifePhoto")  # fmt: skip
# Worth another attempt soon: platform faults, rate limits, the authoritative source being down.
_RETRYABLE = (
    "InternalError", "RequestLimitExceeded", "ServiceUnavailable", "ResourceUnavailable",
    "FailedOperation.RequestLimitExceeded", "FailedOperation.IdentityAuthLimitExceeded",
    "FailedOperation.CompareLibServiceUnavailable", "FailedOperation.CompareSystemError",
    "FailedOperation.LivessSystemError", "FailedOperation.DetectEngineSystemError",
    "FailedOperation.IdPhotoSystemNoanswer", "FailedOperation.DbError", "FailedOperation.UnKnown",
)  # fmt: skip
# Will fail the same way until an operator acts: credentials, parameters, account, rule.
_PERMANENT = (
    "AuthFailure", "InvalidParameter", "MissingParameter", "UnknownParameter", "InvalidAction",
    "NoSuchVersion", "UnsupportedRegion", "UnsupportedOperation", "UnauthorizedOperation",
    "OperationDenied", "FailedOperation", "ClientParamsError", "ClientError",
)  # fmt: skip
_HTTP_4XX = re.compile(rb"\b4\d\d\b")


def api_error(code: str, message: str = "") -> ProviderError:
    """The typed failure for a Tencent Cloud error code (unknown codes are retryable, as for SMS)."""
    if code.startswith(_RETRYABLE):
        return ProviderUnavailable(METHOD, code, message)
    if code.startswith(_PERMANENT):
        return ProviderFailed(METHOD, code, message)
    return ProviderUnavailable(METHOD, code, message)


def _sdk_error(exc: TencentCloudSDKException) -> ProviderError:
    """Translate an SDK exception; messages are dropped, as the gateway may echo request values."""
    code = str(exc.code or "ClientError")
    rid = exc.requestId or ""
    if code == "ClientNetworkError":
        timed_out = "timed out" in str(exc.message or "").lower()
        return ProviderUnavailable(METHOD, "timeout" if timed_out else "connection_failed")
    if code == "ServerNetworkError":
        # The SDK keeps only the body of a non-200 answer; a 4xx means a wrong endpoint or path.
        body = exc.message if isinstance(exc.message, bytes) else str(exc.message or "").encode()
        if _HTTP_4XX.search(body[:200]):
            return ProviderFailed(METHOD, "http_4xx", "non-200 answer from the gateway")
        return ProviderUnavailable(METHOD, "http_5xx", "non-200 answer from the gateway")
    if code in ("JSONDecodeError", "KeyError", "TypeError", "ValueError", "AttributeError"):
        return ProviderFailed(METHOD, "malformed_response", code)
    return api_error(code, f"RequestId {rid}" if rid else "")


def _has_data(model: Any) -> bool:
    """Whether an SDK model (BestFrame, VideoData, IdCardData, ...) carries any value."""
    return model is not None and any(v not in (None, "", [], {}) for v in vars(model).values())


def _score(sim: Any) -> float | None:
    try:
        return float(sim) if sim not in (None, "") else None
    except (TypeError, ValueError):
        return None


class TencentFaceIdProvider:
    """FaceProvider for Tencent Cloud FaceID: DetectAuth → BizToken, GetDetectInfoEnhanced → verdict."""

    method = METHOD

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        endpoint: str,
        scheme: str,
        region: str,
        rule_id: str,
        redirect_url: str | None,
        timeout: float,
    ) -> None:
        if not (secret_id and secret_key and endpoint and rule_id):
            raise ProviderFailed(
                METHOD, "config_error", "TENCENT_SECRET_*, FACEID_ENDPOINT and FACEID_RULE_ID"
            )
        self._credential = credential.Credential(secret_id, secret_key)
        self._endpoint = endpoint
        self._scheme = scheme
        self._region = region
        self.rule_id = rule_id
        self.redirect_url = redirect_url or None
        self._timeout = timeout
        self._local = threading.local()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TencentFaceIdProvider:
        """Build from app config (FACEID_*, TENCENT_SECRET_*, PROVIDER_TIMEOUT)."""
        return cls(
            secret_id=cfg["TENCENT_SECRET_ID"],
            secret_key=cfg["TENCENT_SECRET_KEY"],
            endpoint=cfg["FACEID_ENDPOINT"],
            scheme=cfg["FACEID_SCHEME"],
            region=cfg["FACEID_REGION"],
            rule_id=str(cfg["FACEID_RULE_ID"]),
            redirect_url=cfg.get("FACEID_REDIRECT_URL") or None,
            timeout=float(cfg["PROVIDER_TIMEOUT"]),
        )

    def _sdk(self) -> faceid_client.FaceidClient:
        # One SDK client per thread (it keeps per-call state), kept so its connection to the
        # gateway stays alive; it sends through the lighter transport (transport.py) unless the
        # SDK found a proxy in the environment.
        sdk = getattr(self._local, "sdk", None)
        if sdk is None:
            http = HttpProfile(
                protocol=self._scheme, endpoint=self._endpoint, reqTimeout=self._timeout, keepAlive=True
            )
            sdk = faceid_client.FaceidClient(self._credential, self._region, ClientProfile(httpProfile=http))
            transport.install(sdk, self._endpoint, self._timeout)
            self._local.sdk = sdk
        return sdk

    def start(self, person: Person, ctx: StartContext) -> FaceStart:
        """DetectAuth: register the verification and return the BizToken (and H5 Url) for the phone."""
        req = models.DetectAuthRequest()
        req.RuleId = self.rule_id
        req.IdCard = person.id_number.upper()  # FaceID refuses a lowercase x
        req.Name = person.name
        req.Extra = ctx.out_ref  # echoed in the result: binds it to this verification
        redirect = ctx.return_url or self.redirect_url
        if redirect:
            req.RedirectUrl = redirect
        try:
            resp = self._sdk().DetectAuth(req)
        except TencentCloudSDKException as exc:
            code = str(exc.code or "")
            if code in _API_REASONS:  # e.g. FailedOperation.IdNameMisMatch: final for the citizen
                log.info("faceid refused at start", extra={"out_ref": ctx.out_ref, "provider_code": code})
                raise IdentityRefused(METHOD, code, _API_REASONS[code]) from None
            raise self._logged(_sdk_error(exc), "DetectAuth", ctx) from None
        if not resp.BizToken:
            raise self._logged(ProviderFailed(METHOD, "malformed_response", "no BizToken"), "DetectAuth", ctx)
        log.info("faceid started", extra={"out_ref": ctx.out_ref, "request_id": resp.RequestId})
        return FaceStart(
            provider_ref=resp.BizToken,
            client_payload={"biz_token": resp.BizToken, "url": resp.Url},
            expires_in=BIZ_TOKEN_TTL,
            provider_request_id=resp.RequestId,
        )

    def result(self, person: Person, ctx: StartContext, provider_ref: str) -> FaceResult:
        """GetDetectInfoEnhanced (text only): pending, passed, or the reason it failed."""
        req = models.GetDetectInfoEnhancedRequest()
        req.BizToken = provider_ref
        req.RuleId = self.rule_id
        req.InfoType = INFO_TYPE_TEXT  # fixed: no setting can ask for frames, ID images or video
        try:
            resp = self._sdk().GetDetectInfoEnhanced(req)
        except TencentCloudSDKException as exc:
            code = str(exc.code or "")
            reason = _API_REASONS.get(code) or (
                REASON_LIVENESS_FAILED if code.startswith(_LIVENESS_PREFIXES) else None
            )
            if reason and not code.endswith("SystemError"):
                log.info("faceid final", extra={"out_ref": ctx.out_ref, "provider_code": code})
                return FaceResult(
                    passed=False, reason=reason, provider_code=code, provider_request_id=exc.requestId
                )
            raise self._logged(_sdk_error(exc), "GetDetectInfoEnhanced", ctx) from None
        if any(_has_data(getattr(resp, name, None)) for name in ("BestFrame", "VideoData", "IdCardData")):
            # Never keep biometric data: drop the response and let an operator fix the rule.
            raise self._logged(
                ProviderFailed(METHOD, "image_data_received", "response carried image or video data"),
                "GetDetectInfoEnhanced", ctx,
            )  # fmt: skip
        return self._verdict(person, ctx, resp.Text, resp.RequestId)

    def _verdict(self, person: Person, ctx: StartContext, text: Any, request_id: str | None) -> FaceResult:
        if text is None or text.ErrCode is None:
            return FaceResult(passed=False, pending=True, provider_request_id=request_id)
        try:
            err = int(text.ErrCode)
        except (TypeError, ValueError):
            raise ProviderFailed(METHOD, "malformed_response", "ErrCode is not an integer") from None
        score = _score(text.Sim)
        code = str(err)
        if err in _TEXT_CALLER_ERRORS:
            raise ProviderFailed(METHOD, f"ErrCode.{err}", "FaceID says the flow was called wrongly")
        if err != 0:
            reason = _TEXT_REASONS.get(err, REASON_REJECTED)
            log.info(
                "faceid final",
                extra={"out_ref": ctx.out_ref, "provider_code": code, "request_id": request_id},
            )
            return FaceResult(passed=False, reason=reason, score=score, provider_code=code,
                              provider_request_id=request_id)  # fmt: skip
        if (
            text.LiveStatus not in (None, 0)
            or text.Comparestatus not in (None, 0)
            or (score is not None and score < PASS_THRESHOLD)
        ):
            raise ProviderFailed(
                METHOD, "inconsistent_result", "ErrCode 0 with a failed liveness or comparison"
            )
        # A pass only counts for the identity we asked about, in the verification we started. The
        # name is compared in canonical form: FaceID may spell a dot or a space differently.
        same_person = (text.IdCard or "").upper() == person.id_number.upper() and same_name(
            text.Name, person.name
        )
        same_flow = text.Extra in (None, "") or text.Extra == ctx.out_ref
        if not (same_person and same_flow):
            log.warning(
                "faceid result for another identity", extra={"out_ref": ctx.out_ref, "request_id": request_id}
            )
            return FaceResult(passed=False, reason=REASON_IDENTITY_MISMATCH, score=score,
                              provider_code="0:other_identity", provider_request_id=request_id)  # fmt: skip
        log.info("faceid passed", extra={"out_ref": ctx.out_ref, "score": score, "request_id": request_id})
        return FaceResult(passed=True, score=score, provider_code=code, provider_request_id=request_id)

    @staticmethod
    def _logged(err: ProviderError, action: str, ctx: StartContext) -> ProviderError:
        level = logging.WARNING if err.retryable else logging.ERROR
        log.log(level, "faceid call failed",
                extra={"action": action, "provider_code": err.code, "out_ref": ctx.out_ref})  # fmt: skip
        return err
