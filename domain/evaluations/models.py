"""Ratings of completed cases and the rectification tasks of bad ones."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

# The five named levels, best first. Stored by name; numbers only at a province's boundary.
LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")
BAD = frozenset(LEVELS[3:])  # 差评
INDICATORS = ("efficiency", "guide_accuracy", "convenience", "usability")

# Rectification task states.
OPEN = "open"  # waiting for the department's response
RESPONDED = "responded"  # the citizen may confirm or appeal
CONFIRMED = "confirmed"  # closed: the citizen accepts the rectification
APPEALED = "appealed"  # 申诉复核: back to the department for review
CLOSED_STATES = frozenset({CONFIRMED})
# Who closed a confirmed task: the citizen, or the sweeper when they let the decision period pass.
CLOSED_BY_CITIZEN = "citizen"
CLOSED_BY_DEADLINE = "deadline"


class Evaluation(IdMixin, Base):
    """A citizen's rating of one case (一事一评): unique per application."""

    __tablename__ = "evaluations"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    follows_person = True

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(64), index=True)
    department: Mapped[str | None] = mapped_column(String(100), index=True)
    level: Mapped[str] = mapped_column(String(8))
    indicators: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Encrypted (service.REASON_PURPOSE): citizens write names, numbers and addresses into it.
    reason_enc: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RectificationTask(IdMixin, Base):
    """The follow-up of a 差评: respond by the deadline, the citizen confirms or appeals."""

    __tablename__ = "rectification_tasks"
    follows_person = True  # with its evaluation: the surviving account confirms or appeals it

    evaluation_id: Mapped[str] = mapped_column(ForeignKey("evaluations.id"), unique=True)
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    department: Mapped[str | None] = mapped_column(String(100), index=True)  # its name, as rated
    # Its catalog code (stays when the department is renamed): operators tied to departments see
    # only their departments' tasks.
    department_code: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OPEN, index=True)
    due_on: Mapped[date] = mapped_column(Date)
    response: Mapped[str | None] = mapped_column(Text)
    responded_by: Mapped[str | None] = mapped_column(String(64))
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    appeal_reason_enc: Mapped[str | None] = mapped_column(Text)  # encrypted, as the rating's reason
    rounds: Mapped[int] = mapped_column(default=1)  # 1 first response, 2+ after an appeal
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminded_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last day the citizen may confirm or appeal the latest response (null until responded).
    decide_by: Mapped[date | None] = mapped_column(Date)
    closed_by: Mapped[str | None] = mapped_column(String(16))  # CLOSED_BY_CITIZEN or _DEADLINE
    # The round whose response the citizen was reminded to decide on before `decide_by` (once a
    # round: a new response after an appeal is reminded again); null until the first reminder.
    decide_reminded_round: Mapped[int | None] = mapped_column()
    # The day from which the citizen is reminded (`RECTIFY_REMIND_WORKING_DAYS_BEFORE` working
    # days before `decide_by`), set with it: the sweeper reads only the tasks due their reminder.
    # Null while there is no period, when reminders are off, or (a response given before it was
    # kept) until the sweeper first counts it.
    remind_on: Mapped[date | None] = mapped_column(Date, index=True)
    # What `decide_by` is counted from, kept with it so a later calendar override recounts it
    # (`rectification_calendar`): the day the period started (not itself counted) and its working
    # days. Null for periods given before they were kept: the response's day and the configured
    # number are taken then.
    decide_from: Mapped[date | None] = mapped_column(Date)
    decide_days: Mapped[int | None] = mapped_column()
    # What `due_on` (the department's deadline of the round) is counted from, likewise: the day the
    # task was opened or appealed, and its working days. Null for rounds opened before they were
    # kept: the first round's is its creation day and the configured number; an appeal's is not
    # known, and its deadline stays as it was counted.
    due_from: Mapped[date | None] = mapped_column(Date)
    due_days: Mapped[int | None] = mapped_column()
