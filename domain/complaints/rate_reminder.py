"""Reminding the citizen to rate an answer before its rating period ends.

An answer's notice names its last day to rate (`rate_by`); weeks later many citizens (a good
part of them elderly) have forgotten it, and the complaint is closed unrated
(domain/complaints/unrated.py). So `REMIND_DAYS_BEFORE` Beijing days before `rate_by`
(`COMPLAINT_RATE_REMIND_DAYS_BEFORE`; 0 sends none) the sweeper reminds them, once an answer
round: when it was sent is kept on the complaint (`rate_reminded_at`), written in the same
transaction as the notice, and cleared with `rate_by` when a new answer is given or the answer
is rated. A reminder day the sweeper missed is made up on any later day of the period; never
once the answer is rated or the complaint closed. The notice's dedupe key (per round, by the
caller) keeps a second one out even should the mark be lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import local_date
from core.db import in_batches
from domain.complaints.models import REPLIED, Complaint
from domain.complaints.service import _locked

REMIND_DAYS_BEFORE = 3  # COMPLAINT_RATE_REMIND_DAYS_BEFORE's default
BATCH = 200  # complaints per transaction
MAX_BATCHES = 10  # per pass: the rest waits for the next pass


def remind_unrated(
    session: Session,
    now: datetime,
    *,
    days_before: int = REMIND_DAYS_BEFORE,
    tell: Callable[[Complaint], bool] | None = None,
) -> int:
    """Remind the citizens of the answers awaiting a rating whose reminder day (`days_before`
    days before `rate_by`) has come, not yet reminded this round; how many notices were written
    (`tell`, in the same transaction: the caller writes the notice, False when it wrote none, as
    for a closed account). Each complaint is locked and read afresh first, so a rating or a new
    answer at the same moment wins, and of two sweepers at once the second finds it reminded.
    In id order, `BATCH` a transaction, at most `MAX_BATCHES` a pass; commits after each."""
    if days_before < 1:
        return 0
    today = local_date(now)
    last_day = today + timedelta(days=days_before)
    C = Complaint
    unreminded = C.status == REPLIED, C.rate_by >= today, C.rate_by <= last_day, C.rate_reminded_at.is_(None)
    reminded = 0

    def remind(ids: list[str]) -> None:
        nonlocal reminded
        for complaint_id in ids:
            complaint = _locked(session, complaint_id)
            if complaint is None or complaint.status != REPLIED or complaint.rate_reminded_at is not None:
                continue
            if complaint.rate_by is None or not today <= complaint.rate_by <= last_day:
                continue  # answered again since it was read: its reminder day is to come
            complaint.rate_reminded_at = now  # also when nothing is written: it leaves the set
            if tell is not None and tell(complaint):
                reminded += 1

    due = select(C.id).where(*unreminded).order_by(C.id)
    in_batches(session, due, remind, batch=BATCH, batches=MAX_BATCHES)
    return reminded
