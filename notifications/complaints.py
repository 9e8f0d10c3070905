"""Telling a citizen about their complaint or consultation: an answer to rate and by when, a
reminder before that day, and its closing when the answer went unrated."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from domain.complaints.models import Complaint
from notifications import fanout
from notifications.settings import NotifySettings


def tell_answered(
    session: Session, settings: NotifySettings, complaint: Complaint, *, dedupe_key: str
) -> None:
    """The `complaint_replied` notice for `complaint`'s current answer, naming its last day to
    rate (`rate_by`); flushed in the caller's transaction, once per `dedupe_key`."""
    _tell(session, settings, complaint, "complaint_replied", complaint.rate_by, dedupe_key)


def tell_rate_reminder(
    session: Session, settings: NotifySettings, complaint: Complaint, *, dedupe_key: str
) -> bool:
    """The `complaint_rate_reminder` notice: the current answer is still to be rated by
    `rate_by`, or the complaint closes. Flushed in the caller's transaction, once per
    `dedupe_key`; False when nothing was written (already told, or the account is closed)."""
    return _tell(session, settings, complaint, "complaint_rate_reminder", complaint.rate_by, dedupe_key)


def tell_closed_unrated(
    session: Session, settings: NotifySettings, complaint: Complaint, rate_by: date, *, dedupe_key: str
) -> bool:
    """The `complaint_closed_unrated` notice: closed as the answer was not rated by `rate_by`.
    Flushed in the caller's transaction, once per `dedupe_key`; False when nothing was written."""
    return _tell(session, settings, complaint, "complaint_closed_unrated", rate_by, dedupe_key)


def _tell(
    session: Session,
    settings: NotifySettings,
    complaint: Complaint,
    event_type: str,
    rate_by: date | None,
    dedupe_key: str,
) -> bool:
    note = fanout.notify(
        session,
        settings,
        account_id=complaint.account_id,
        event_type=event_type,
        params={
            "kind": complaint.kind,  # worded per language by notifications.events
            "case_number": complaint.tracking_no,
            "rate_by": rate_by.isoformat() if rate_by else None,
        },
        dedupe_key=dedupe_key,
        link=f"/v1/complaints/{complaint.id}",
    )
    return note is not None
