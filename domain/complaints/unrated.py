"""Answers the citizen left unrated: the complaint is closed without a rating after `rate_by`.

An answered complaint waits for the citizen's rating (满意 / 基本满意 close it, 不满意 asks for
another answer). One never rated would stay 已答复 for ever, in the citizen's list and in the
department's open figures; after its rating period (`COMPLAINT_RATE_DAYS` Beijing days from
the answer, the last day included, told to the citizen with the answer) the sweeper closes it,
with no rating and a `closed` timeline event of reason `not_rated`, and the citizen is told
(`complaint_closed_unrated`; they were reminded before that day: `rate_reminder`). A rating
after that is 409 `complaints.state` ("已办结"), as for any closed complaint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import local_date
from core.db import in_batches
from domain.complaints.models import CLOSED, REPLIED, Complaint
from domain.complaints.service import RATE_DAYS, _event, _locked

BATCH = 200  # complaints per transaction
MAX_BATCHES = 10  # per pass and kind: the rest waits for the next pass


def close_unrated(
    session: Session,
    now: datetime,
    *,
    rate_days: int = RATE_DAYS,
    tell: Callable[[Complaint], None] | None = None,
    tell_closed: Callable[[Complaint, date], None] | None = None,
) -> int:
    """Close the answered complaints whose `rate_by` has passed, unrated; how many. Each is
    locked and read afresh first, so a rating given at the same moment wins (the complaint is then
    no longer awaiting one, or its new round has a new period). Answers given before periods were
    kept first get one, counted from this pass's Beijing date, and the citizen is told its last
    day (`tell`, in the same transaction: the caller writes the notice). Each citizen whose
    complaint is closed is told so, with the last day it could be rated (`tell_closed`, in the
    closing transaction: once, as a complaint is closed once). Rows are locked in id order, as
    any other batch over complaints. Commits after each batch."""
    today = local_date(now)

    def give_period(ids: list[str]) -> None:
        for complaint_id in ids:
            complaint = _locked(session, complaint_id)
            if complaint is not None and complaint.status == REPLIED and complaint.rate_by is None:
                complaint.rate_by = today + timedelta(days=rate_days)
                if tell is not None:
                    tell(complaint)

    periodless = (
        select(Complaint.id)
        .where(Complaint.status == REPLIED, Complaint.rate_by.is_(None))
        .order_by(Complaint.id)
    )
    in_batches(session, periodless, give_period, batch=BATCH, batches=MAX_BATCHES)

    closed = 0

    def close(ids: list[str]) -> None:
        nonlocal closed
        for complaint_id in ids:
            complaint = _locked(session, complaint_id)
            if complaint is None or complaint.status != REPLIED or complaint.rate_by is None:
                continue
            if complaint.rate_by >= today:  # rated, and answered again, since it was read
                continue
            last_day = complaint.rate_by
            complaint.status = CLOSED
            complaint.rate_by = complaint.rate_reminded_at = None
            complaint.reply_rating = None  # not the earlier round's 不满意: this answer went unrated
            complaint.updated_at = now
            _event(session, complaint, "closed", "system", None, reason="not_rated")
            if tell_closed is not None:
                tell_closed(complaint, last_day)
            closed += 1

    due = (
        select(Complaint.id)
        .where(Complaint.status == REPLIED, Complaint.rate_by < today)
        .order_by(Complaint.id)
    )
    in_batches(session, due, close, batch=BATCH, batches=MAX_BATCHES)
    return closed
