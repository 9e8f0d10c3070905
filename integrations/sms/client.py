"""Tencent Cloud SMS client (API version 2021-01-11, action SendSms) with classified failures.

The official SDK does the signing (TC3-HMAC-SHA256) and the HTTP call; this module points it at
the configured endpoint (the simulator in development and tests, sms.tencentcloudapi.com in
production) and turns every failure into an SmsError that says whether a retry can help.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from core.errors import PermanentError, RetryableError
from core.masking import mask_phone, redact_text

log = logging.getLogger(__name__)

API_VERSION = "2021-01-11"
SERVICE = "sms"

# Codes a later attempt can succeed on: the SDK's own network errors (connection refused,
# timeouts, a non-200 gateway answer), platform faults and API-rate limits.
_RETRYABLE_PREFIXES = (
    "ClientNetworkError",
    "ServerNetworkError",
    "InternalError",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ResourceUnavailable",
    # Frequency limits lift after their window (30 s, an hour, the day): the same message to
    # the same number goes through later. Two critical events of one case reach an elderly
    # citizen's only channel within seconds; the second must wait, not be dropped.
    "LimitExceeded.PhoneNumberThirtySecondLimit",
    "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
    "LimitExceeded.DeliveryFrequencyLimit",
    "LimitExceeded.AppDailyLimit",
    "LimitExceeded.DailyLimit",
)
# Codes that will fail the same way again: credentials, parameters, unapproved sign or
# template, too many numbers in one request (LimitExceeded.PhoneNumberCountLimit), balance,
# unsupported calls.
_PERMANENT_PREFIXES = (
    "AuthFailure",
    "InvalidParameter",
    "MissingParameter",
    "UnknownParameter",
    "InvalidAction",
    "NoSuchVersion",
    "UnsupportedRegion",
    "UnsupportedOperation",
    "UnauthorizedOperation",
    "FailedOperation",
    "LimitExceeded",
    "ClientParamsError",
    "ClientError",
)


def is_retryable(code: str) -> bool:
    """Whether an error code is worth another attempt; unknown codes are, as in the dispatcher."""
    if code.startswith(_RETRYABLE_PREFIXES):
        return True
    return not code.startswith(_PERMANENT_PREFIXES)


class SmsError(Exception):
    """A failed send; `code` is Tencent's error code (or the SDK's, for network failures)."""

    retryable = False

    def __init__(self, code: str, message: str = "", request_id: str | None = None) -> None:
        # Provider messages can echo request values: never let a phone number through.
        self.code = code
        self.message = redact_text(message or "")[:300]
        self.request_id = request_id
        super().__init__(f"{code}: {self.message}" + (f" (RequestId {request_id})" if request_id else ""))


class SmsTemporaryError(SmsError, RetryableError):
    """A failure a later attempt may not have (network, timeout, InternalError, API rate limit)."""

    retryable = True


class SmsRejectedError(SmsError, PermanentError):
    """A failure retrying will not fix (credentials, parameters, approval, per-number limits)."""

    retryable = False


def sms_error(code: str, message: str = "", request_id: str | None = None) -> SmsError:
    """The typed error for a Tencent error code."""
    cls = SmsTemporaryError if is_retryable(code) else SmsRejectedError
    return cls(code, message, request_id)


@dataclass(frozen=True)
class SmsSendResult:
    serial_no: str
    fee: int
    request_id: str | None
    session_context: str | None


def e164(phone: str) -> str:
    """Mainland 11-digit numbers get +86; numbers already in E.164 pass through."""
    return phone if phone.startswith("+") else "+86" + phone


class SmsClient:
    """Sends one templated SMS per call through the Tencent Cloud SMS API."""

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        region: str,
        endpoint: str,
        scheme: str,
        sdk_app_id: str,
        sign_name: str,
        timeout: float,
    ) -> None:
        self._credential = credential.Credential(secret_id, secret_key)
        self._region = region
        self._endpoint = endpoint
        self._scheme = scheme
        self._timeout = timeout
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SmsClient:
        """Build from app config (SMS_* and TENCENT_SECRET_*)."""
        return cls(
            secret_id=cfg["TENCENT_SECRET_ID"],
            secret_key=cfg["TENCENT_SECRET_KEY"],
            region=cfg["SMS_REGION"],
            endpoint=cfg["SMS_ENDPOINT"],
            scheme=cfg["SMS_SCHEME"],
            sdk_app_id=cfg["SMS_SDK_APP_ID"],
            sign_name=cfg["SMS_SIGN_NAME"],
            timeout=cfg["SMS_TIMEOUT"],
        )

    def _sdk(self) -> sms_client.SmsClient:
        # A fresh SDK client per call: it owns a requests.Session, which is not safe to share
        # between threads, and a send is rare enough that connection reuse does not matter.
        http = HttpProfile(protocol=self._scheme, endpoint=self._endpoint, reqTimeout=self._timeout)
        return sms_client.SmsClient(self._credential, self._region, ClientProfile(httpProfile=http))

    def send(
        self, phone: str, template_id: str, params: Sequence[str], *, session_context: str | None = None
    ) -> SmsSendResult:
        """Send template `template_id` with `params` to one number; raise SmsError on any failure."""
        req = models.SendSmsRequest()
        req.PhoneNumberSet = [e164(phone)]
        req.SmsSdkAppId = self.sdk_app_id
        req.SignName = self.sign_name
        req.TemplateId = str(template_id)
        req.TemplateParamSet = [str(p) for p in params]
        req.SessionContext = session_context
        try:
            resp = self._sdk().SendSms(req)
        except TencentCloudSDKException as exc:
            err = sms_error(str(exc.code or "ClientError"), str(exc.message or ""), exc.requestId)
            log.warning(
                "sms send failed",
                extra={"sms_code": err.code, "retryable": err.retryable, "template_id": template_id,
                       "request_id": err.request_id, "session_context": session_context},
            )  # fmt: skip
            raise err from None
        statuses = resp.SendStatusSet or []
        if len(statuses) != 1:
            raise sms_error(
                "EmptySendStatusSet", "SendSms answered without a status for the number", resp.RequestId
            )
        status = statuses[0]
        if status.Code != "Ok":
            # Per-number failures arrive inside a successful response.
            err = sms_error(str(status.Code), str(status.Message or ""), resp.RequestId)
            log.warning(
                "sms rejected for number",
                extra={"sms_code": err.code, "retryable": err.retryable, "template_id": template_id,
                       "phone_masked": mask_phone(phone), "request_id": resp.RequestId},
            )  # fmt: skip
            raise err
        log.info(
            "sms sent",
            extra={"serial_no": status.SerialNo, "fee": status.Fee, "template_id": template_id,
                   "request_id": resp.RequestId, "session_context": session_context},
        )  # fmt: skip
        return SmsSendResult(
            serial_no=status.SerialNo,
            fee=int(status.Fee or 0),
            request_id=resp.RequestId,
            session_context=status.SessionContext,
        )
