"""SendSms as the real service judges it: request checks, per-number limits, the SendStatusSet.

Called under the state's lock; errors that fail the whole request are raised as ApiError, while
per-number refusals are answered inside a successful response, as Tencent does.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from integrations.sms.sim_state import BEIJING, MAINLAND, SimState, Template

SEND_SMS_PARAMS = {
    "PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName", "TemplateParamSet",
    "ExtendCode", "SessionContext", "SenderId",
}  # fmt: skip
MAX_NUMBERS = 200
FREQUENCY_LIMITS = (  # Tencent's default per-number policy
    ("LimitExceeded.PhoneNumberThirtySecondLimit", 30, 1),
    ("LimitExceeded.PhoneNumberOneHourLimit", 3600, 5),
)
DAILY_LIMIT = ("LimitExceeded.PhoneNumberDailyLimit", 10)


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


def _check_send_sms(state: SimState, p: dict[str, Any]) -> Template:
    unknown = sorted(set(p) - SEND_SMS_PARAMS)
    if unknown:
        raise ApiError("UnknownParameter", f"The parameter `{unknown[0]}` is not recognized.")
    for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
        if p.get(name) in (None, "", []):
            raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
    for name in ("PhoneNumberSet", "TemplateParamSet"):
        value = p.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be an array of strings.")
    for name in ("SmsSdkAppId", "TemplateId", "SignName", "SessionContext", "ExtendCode", "SenderId"):
        if name in p and not isinstance(p[name], str):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be a string.")
    if len(p["PhoneNumberSet"]) > MAX_NUMBERS:
        raise ApiError("LimitExceeded.PhoneNumberCountLimit", "At most 200 phone numbers per request.")
    if p["SmsSdkAppId"] not in state.app_ids:
        raise ApiError("InvalidParameterValue.SdkAppIdNotExist", "The SmsSdkAppId does not exist.")
    if p.get("SignName") not in state.signs:
        raise ApiError(
            "FailedOperation.SignatureIncorrectOrUnapproved",
            "The signature is not approved or is incorrectly formatted.",
        )
    template = state.templates.get(p["TemplateId"])
    if template is None or not template.approved:
        raise ApiError(
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "The template is not approved or the template content does not match.",
        )
    values = p.get("TemplateParamSet", [])
    if len(values) != template.param_count:
        raise ApiError(
            "InvalidParameterValue.TemplateParameterFormatError",
            f"The template requires {template.param_count} parameters, {len(values)} given.",
        )
    if template.kind == "otp" and not re.fullmatch(r"\d{0,6}", values[0]):
        raise ApiError(
            "InvalidParameterValue.TemplateParameterFormatError",
            "A verification-code template variable only accepts 0-6 digits.",
        )
    return template


def _frequency_error(state: SimState, number: str, now: float) -> str | None:
    sent = state.history[number]
    for code, window, limit in FREQUENCY_LIMITS:
        if sum(1 for t in sent if now - t < window) >= limit:
            return code
    today = datetime.fromtimestamp(now, tz=BEIJING).date()
    code, limit = DAILY_LIMIT
    if sum(1 for t in sent if datetime.fromtimestamp(t, tz=BEIJING).date() == today) >= limit:
        return code
    return None


def send_sms(state: SimState, p: dict[str, Any], request_id: str) -> list[dict[str, Any]]:
    """Check one SendSms request, record what it delivers, and return its SendStatusSet."""
    template = _check_send_sms(state, p)
    values = p.get("TemplateParamSet", [])
    body = template.content
    for i, value in enumerate(values, start=1):
        body = body.replace(f"{{{i}}}", value)
    content = f"【{p['SignName']}】{body}"
    fee = 1 if len(content) <= 70 else math.ceil(len(content) / 67)
    now = state.sim_now()
    results = []
    for raw in p["PhoneNumberSet"]:
        match = MAINLAND.match(raw.replace(" ", ""))
        number = f"+86{match.group(1)}" if match else raw
        context = p.get("SessionContext", "")
        status = {"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": context,
                  "Code": "Ok", "Message": "send success", "IsoCode": "CN" if match else ""}  # fmt: skip
        error = (
            "InvalidParameterValue.IncorrectPhoneNumber"
            if match is None
            else _frequency_error(state, number, now)
        )
        if error:
            status.update(Code=error, Message="The request was rejected for this number.")
        else:
            serial = f"{state.rng.randint(2000, 3999)}:{state.rng.getrandbits(64):020d}"
            status.update(SerialNo=serial, Fee=fee)
            state.history[number].append(now)
            state.messages.append({
                "phone": number, "template_id": template.id, "params": list(values), "content": content,
                "sign_name": p["SignName"], "serial_no": serial, "session_context": context,
                "request_id": request_id, "app_id": p["SmsSdkAppId"],
                "sent_at": datetime.fromtimestamp(now, tz=UTC).isoformat(),
            })  # fmt: skip
        state.statuses[status["Code"]] += 1
        results.append(status)
    return results
