"""`calendar.follow`: what follows a calendar override (cases, halls' slots, rectifications)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import current_app
from rq.timeouts import BaseTimeoutException
from sqlalchemy.orm import Session

from core.errors import PermanentError
from domain.applications import calendar_changes


def follow(*, session: Session, job_id: str, **payload: Any) -> dict:
    """Run the override's follow-ups; a step that failed raises RetryableError (all run again)."""
    try:
        day = date.fromisoformat(payload["day"])
        region = str(payload["region"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"calendar follow-up payload unreadable: {type(exc).__name__}") from None
    # The rectification periods as configured now, not as the payload recorded them when the
    # override was entered: a retry across a deploy, or a replay days later, must count as the
    # sweeper does (it reads the configuration at each pass).
    cfg = current_app.config
    days = {
        "decide_days": int(cfg["RECTIFY_DECIDE_WORKING_DAYS"]),
        "remind_days": int(cfg["RECTIFY_REMIND_WORKING_DAYS_BEFORE"]),
        "working_days": int(cfg["RECTIFY_WORKING_DAYS"]),
    }
    # RQ's job timeout is an Exception raised inside the running step: it must end the run, not
    # be caught as that step's failure with the later steps run past the job's lock.
    return calendar_changes.follow_all(
        session, day=day, region=region, never_caught=(BaseTimeoutException,), **days
    )
