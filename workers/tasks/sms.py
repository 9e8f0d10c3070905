"""SMS jobs (placeholder until the SMS integration lands)."""

from __future__ import annotations

from typing import Any

from core.errors import PermanentError


def send_sms(*, session: Any, job_id: str, **payload: Any) -> dict:
    raise PermanentError("SMS sending is not implemented yet")
