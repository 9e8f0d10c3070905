"""Classification of Tencent Cloud SMS error codes into retryable and permanent failures."""

from __future__ import annotations

import pytest

from core.errors import PermanentError, RetryableError
from integrations.sms.client import SmsError, e164, is_retryable, sms_error


@pytest.mark.parametrize(
    "code",
    [
        "ClientNetworkError", "ServerNetworkError", "InternalError", "InternalError.Timeout",
        "InternalError.SendAndRecvFail", "RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded",
        "ServiceUnavailable", "SomethingNewFromTencent", "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit", "LimitExceeded.PhoneNumberDailyLimit",
    ],
)  # fmt: skip
def test_retryable_codes(code):
    err = sms_error(code, "x")
    assert is_retryable(code) and err.retryable and isinstance(err, RetryableError)


@pytest.mark.parametrize(
    "code",
    [
        "AuthFailure.SignatureFailure", "AuthFailure.SecretIdNotFound", "AuthFailure.SignatureExpire",
        "InvalidParameter", "InvalidParameterValue.IncorrectPhoneNumber",
        "InvalidParameterValue.TemplateParameterFormatError", "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.SignatureIncorrectOrUnapproved", "LimitExceeded.PhoneNumberCountLimit",
        "MissingParameter", "UnsupportedRegion",
    ],
)  # fmt: skip
def test_permanent_codes(code):
    err = sms_error(code, "x")
    assert not is_retryable(code) and not err.retryable and isinstance(err, PermanentError)


def test_error_text_is_redacted_and_keeps_the_code():
    err = sms_error("InvalidParameterValue.IncorrectPhoneNumber", "bad number 13800138000", "req-1")
    assert isinstance(err, SmsError) and err.code == "InvalidParameterValue.IncorrectPhoneNumber"
    assert "13800138000" not in str(err) and "req-1" in str(err)


def test_e164():
    assert e164("13800138000") == "+8613800138000" and e164("+8613800138000") == "+8613800138000"
