"""Telling a citizen that their complaint or consultation has an answer to rate, and by when."""

from __future__ import annotations

from sqlalchemy.orm import Session

from domain.complaints.models import Complaint
from notifications import fanout
from notifications.settings import NotifySettings


def tell_answered(
    session: Session, settings: NotifySettings, complaint: Complaint, *, dedupe_key: str
) -> None:
    """The `complaint_replied` notice for `complaint`'s current answer, naming its last day to
    rate (`rate_by`); flushed in the caller's transaction, once per `dedupe_key`."""
    fanout.notify(
        session,
        settings,
        account_id=complaint.account_id,
        event_type="complaint_replied",
        params={
            "kind": complaint.kind,  # worded per language by notifications.events
            "case_number": complaint.tracking_no,
            "rate_by": complaint.rate_by.isoformat() if complaint.rate_by else None,
        },
        dedupe_key=dedupe_key,
        link=f"/v1/complaints/{complaint.id}",
    )
