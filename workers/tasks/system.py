"""Operational jobs."""

from __future__ import annotations

import time
from typing import Any

from core.errors import PermanentError, RetryableError


def probe(*, session: Any, job_id: str, sleep: float = 0, fail: str | None = None, **_: Any) -> dict:
    """A diagnostic job: sleeps, then succeeds or fails as asked (used by ops checks and tests)."""
    if sleep:
        time.sleep(min(float(sleep), 300))
    if fail == "retryable":
        raise RetryableError("probe asked to fail (retryable)")
    if fail == "permanent":
        raise PermanentError("probe asked to fail (permanent)")
    return {"slept": sleep}
