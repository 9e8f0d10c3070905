"""Operational jobs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.errors import PermanentError, RetryableError


def probe(
    *,
    session: Any,
    job_id: str,
    sleep: float = 0,
    fail: str | None = None,
    marker: str | None = None,
    **_: Any,
) -> dict:
    """A diagnostic job: sleeps, then succeeds or fails as asked (used by ops checks and tests).

    With `marker` (a file path) it sleeps only on the run that creates the marker, so a
    job interrupted mid-sleep finishes quickly when it is recovered.
    """
    if sleep and marker:
        path = Path(marker)
        if path.exists():
            sleep = 0
        else:
            path.write_text(job_id)
    if sleep:
        time.sleep(min(float(sleep), 300))
    if fail == "retryable":
        raise RetryableError("probe asked to fail (retryable)")
    if fail == "permanent":
        raise PermanentError("probe asked to fail (permanent)")
    return {"slept": sleep}
