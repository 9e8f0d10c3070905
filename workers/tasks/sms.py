"""SMS delivery jobs ("sms.send"): decrypt the job's secret part and call the SMS provider."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from api.deps import services
from core.crypto import DecryptionError
from core.errors import PermanentError, RetryableError
from domain.auth import sms_login
from integrations.sms.client import SmsError

log = logging.getLogger(__name__)

# Template key in the job payload → config entry holding the provider's template id.
TEMPLATE_SETTINGS = {
    sms_login.OTP_TEMPLATE: "SMS_TEMPLATE_OTP",
    sms_login.ACCOUNT_CLOSED_TEMPLATE: "SMS_TEMPLATE_ACCOUNT_CLOSED",
}


def send_sms(*, session: Session, job_id: str, **payload: Any) -> dict:
    """Send one templated SMS; provider failures become RetryableError or PermanentError."""
    template = payload.get("template")
    setting = TEMPLATE_SETTINGS.get(str(template))
    if setting is None:
        raise PermanentError(f"unknown SMS template key {template!r}")
    challenge_id = payload.get("challenge_id")
    if challenge_id and not sms_login.challenge_is_live(session, challenge_id):
        # The code expired, was replaced, used or burned while the job waited: sending it
        # now would only confuse the citizen.
        log.info("sms skipped: challenge no longer live", extra={"job_id": job_id})
        return {"skipped": "challenge_not_live"}
    svc = services()
    try:
        secret = sms_login.open_job_secret(svc.encryptor, payload["data"])
    except (KeyError, ValueError, DecryptionError) as exc:
        raise PermanentError(f"SMS job payload cannot be opened: {type(exc).__name__}") from None
    try:
        # The job id travels as SessionContext: a duplicate delivery (retry after a timeout
        # that did reach the provider) shows up as two messages with the same context.
        result = svc.sms.send(
            secret["phone"], current_app.config[setting], secret["params"], session_context=job_id
        )
    except SmsError as exc:
        if exc.retryable:
            raise RetryableError(str(exc)) from exc
        raise PermanentError(str(exc)) from exc
    return {"serial_no": result.serial_no, "fee": result.fee, "request_id": result.request_id}
