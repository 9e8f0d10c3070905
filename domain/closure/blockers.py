"""What keeps an account from closing: business still open that needs the citizen.

A case between submission and its end (completed, result delivered, withdrawn, not accepted:
domain/applications/states.py), a hall booking still to come or under way, a complaint not yet
closed, a rectification the citizen appealed (申诉复核) the department has not answered, and a
case whose forwarding to the province is not done (a withdrawal not yet delivered: should the
province refuse it, the refusal is recorded with the applicant's name masked, which needs the
name the closure would erase).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core import clock
from domain.applications import states
from domain.applications.models import OUTBOX_CANCELLED, Application, ForwardingOutbox
from domain.appointments.models import BOOKED, CHECKED_IN, Appointment
from domain.complaints.models import CLOSED as COMPLAINT_CLOSED
from domain.complaints.models import Complaint
from domain.evaluations.models import APPEALED, Evaluation, RectificationTask

# A case in any of these is over: the department's record, nothing the citizen waits for.
FINISHED = frozenset({states.COMPLETED, states.RESULT_DELIVERED, states.WITHDRAWN, states.NOT_ACCEPTED})
OPEN_CASES = tuple(s for s in states.STATUSES if s != states.DRAFT and s not in FINISHED)
# A forwarding row in any of these is done with (a dead letter is not: an operator replays it).
FORWARDING_DONE = ("delivered", OUTBOX_CANCELLED)


# What the citizen is told of each kind of blocker (zh, en).
LABELS: dict[str, tuple[str, str]] = {
    "application": ("办件尚未办结", "A case is not finished yet"),
    "appointment": ("有尚未到来的预约", "A hall booking is still to come"),
    "complaint": ("投诉或建议尚未办结", "A complaint or suggestion is not closed yet"),
    "rectification_appeal": ("差评整改申诉尚未答复", "An appeal on a rectification awaits its answer"),
    "forwarding_pending": (
        "正在与省平台同步办件，请稍后再试",
        "The case is still being synchronised with the provincial platform; try again later",
    ),
}


def labelled(found: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """`found` with each blocker's label in `lang` (en, else Chinese)."""
    pick = 1 if lang == "en" else 0
    return [b | {"label": LABELS[b["type"]][pick]} for b in found]


def find(session: Session, account_id: str) -> list[dict[str, Any]]:
    """Every blocker of the account, oldest first within each kind; [] when it may close."""
    found: list[dict[str, Any]] = []
    cases = session.execute(
        select(Application.id, Application.status, Application.case_number, Application.service_name)
        .where(Application.account_id == account_id, Application.status.in_(OPEN_CASES))
        .order_by(Application.created_at, Application.id)
    )
    found += [
        {"type": "application", "id": r.id, "status": r.status, "ref": r.case_number, "name": r.service_name}
        for r in cases
    ]
    today = clock.local_date()  # a past day's booking is the hall's record
    bookings = session.execute(
        select(Appointment.id, Appointment.status, Appointment.day)
        .where(
            Appointment.account_id == account_id,
            # A booking still to come; checked in is the visit's last status, so one of today
            # is over (the hall's record) and only a check-in dated later (none should be) blocks.
            or_(
                and_(Appointment.status == BOOKED, Appointment.day >= today),
                and_(Appointment.status == CHECKED_IN, Appointment.day > today),
            ),
        )
        .order_by(Appointment.day, Appointment.id)
    )
    found += [
        {"type": "appointment", "id": r.id, "status": r.status, "ref": r.day.isoformat()} for r in bookings
    ]
    complaints = session.execute(
        select(Complaint.id, Complaint.status, Complaint.tracking_no)
        .where(Complaint.account_id == account_id, Complaint.status != COMPLAINT_CLOSED)
        .order_by(Complaint.created_at, Complaint.id)
    )
    found += [{"type": "complaint", "id": r.id, "status": r.status, "ref": r.tracking_no} for r in complaints]
    listed = {b["id"] for b in found}
    syncing = session.execute(
        select(Application.id, ForwardingOutbox.state, Application.case_number)
        .join(ForwardingOutbox, ForwardingOutbox.application_id == Application.id)
        .where(Application.account_id == account_id, ForwardingOutbox.state.not_in(FORWARDING_DONE))
        .order_by(Application.created_at, Application.id, ForwardingOutbox.created_at)
    )
    for r in syncing:  # a case still open is listed as such already; one entry per case
        if r.id not in listed:
            listed.add(r.id)
            found.append({"type": "forwarding_pending", "id": r.id, "status": r.state, "ref": r.case_number})
    appeals = session.execute(  # ref: the rated case's number, for the UI to find it by
        select(RectificationTask.id, RectificationTask.status, Application.case_number.label("ref"))
        .join(Evaluation, Evaluation.id == RectificationTask.evaluation_id)
        .join(Application, Application.id == Evaluation.application_id)
        .where(RectificationTask.account_id == account_id, RectificationTask.status == APPEALED)
        .order_by(RectificationTask.created_at, RectificationTask.id)
    )
    found += [{"type": "rectification_appeal", "id": r.id, "status": r.status, "ref": r.ref} for r in appeals]
    return found
