"""Halls, their bookable slots, and citizens' appointments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    false,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, IdMixin, UTCDateTime

BOOKED = "booked"
CANCELLED = "cancelled"
CHECKED_IN = "checked_in"
NO_SHOW = "no_show"
# Cancelled by the hall: the calendar closed the booking's day after it was made (a typhoon). The
# place is given back; never a no-show, not active, and the citizen may still move it (once).
HALL_CLOSED = "hall_closed"
ACTIVE = (BOOKED, CHECKED_IN)
# The bookings a slot's `booked` counts: a place is taken on booking and given back only by a
# cancel, a reschedule out of the slot or the hall's closure; a check-in and a no-show keep it.
HOLDS_PLACE = (BOOKED, CHECKED_IN, NO_SHOW)


class Hall(IdMixin, Base):
    """A government-service hall: where it is, when it is open, what it serves."""

    __tablename__ = "halls"

    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(6), index=True)  # GB/T 2260
    # {"1": [["09:00", "12:00"], ["13:30", "17:00"]], ...}: ISO weekday → open periods (local time)
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    windows: Mapped[int] = mapped_column(Integer)
    service_codes: Mapped[list[str]] = mapped_column(JSON)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    capacity_per_window: Mapped[int] = mapped_column(Integer, default=2)  # citizens per window and slot
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AppointmentSlot(IdMixin, Base):
    """One bookable time of one item at one hall; `booked` never passes `capacity`."""

    __tablename__ = "appointment_slots"
    __table_args__ = (UniqueConstraint("hall_id", "service_code", "starts_at", name="uq_slots_time"),)

    hall_id: Mapped[str] = mapped_column(ForeignKey("halls.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    # The day became a holiday after its slots were made (a calendar override): no new places.
    closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Appointment(IdMixin, Base):
    """A citizen's booking of a slot."""

    __tablename__ = "appointments"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    __table_args__ = (
        # One active booking per citizen, item and day (a second one is refused, also under races).
        Index(
            "uq_appointments_one_per_day", "account_id", "service_code", "day", unique=True,
            postgresql_where=text("status IN ('booked', 'checked_in')"),
            sqlite_where=text("status IN ('booked', 'checked_in')"),
        ),
    )  # fmt: skip
    follows_person = True

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    slot_id: Mapped[str] = mapped_column(ForeignKey("appointment_slots.id"), index=True)
    hall_id: Mapped[str] = mapped_column(ForeignKey("halls.id"))
    service_code: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=BOOKED)
    queue_no: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The booking a reschedule moved this one to (set with the move; this one is cancelled then).
    moved_to: Mapped[str | None] = mapped_column(ForeignKey("appointments.id"))

    @classmethod
    def settle_merge(cls, session: Session, *, source_id: str, target_id: str, now: datetime) -> None:
        """Before an account merge moves the bookings: where both accounts hold an active
        booking of the same item on the same day, the person keeps one place. The one checked
        in is kept, else the surviving account's; the other is cancelled and its place given
        back to the hall (one person, one place), also when it was checked in: a cancelled
        booking holds no place (`HOLDS_PLACE`), as after a citizen's cancel.

        Lock order as a cancel, a reschedule and the sweeper's release of a closed day: the
        bookings first (the source's, which all move, and the target's active ones, by id; a
        racing cancel or check-in of one is waited for and its outcome read), then each slot
        that lost a booking, recounted (`recount_places`) in the order of the slots' ids."""
        A = cls
        locked = session.scalars(
            select(A)
            .where(or_(A.account_id == source_id, and_(A.account_id == target_id, A.status.in_(ACTIVE))))
            .order_by(A.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        theirs = {(a.service_code, a.day): a for a in locked if a.account_id == target_id}
        released: set[str] = set()
        for mine in locked:
            other = theirs.get((mine.service_code, mine.day))
            if mine.account_id != source_id or mine.status not in ACTIVE or other is None:
                continue
            drop = other if mine.status == CHECKED_IN and other.status == BOOKED else mine
            drop.status, drop.updated_at = CANCELLED, now
            released.add(drop.slot_id)
        session.flush()  # the bookings written before any slot is locked
        for slot_id in sorted(released):
            recount_places(session, slot_id)


def recount_places(session: Session, slot_id: str) -> None:
    """Set the slot's count to the bookings on it holding a place (`HOLDS_PLACE`).

    The slot is locked first and counted in the statements after: an UPDATE whose SET counts
    the bookings reads them as they were when it began, so a booking committed while it waited
    for the slot's row (the closure taken back and the place claimed meanwhile) would be missed
    and its `booked + 1` overwritten. A cancel, reschedule or check-in on a released slot locks
    its booking first, so the release's UPDATE has already waited for it."""
    A, S = Appointment, AppointmentSlot
    session.execute(select(S.id).where(S.id == slot_id).with_for_update())
    held = session.scalar(
        select(func.count()).select_from(A).where(A.slot_id == slot_id, A.status.in_(HOLDS_PLACE))
    )
    session.execute(
        update(S).where(S.id == slot_id).values(booked=held), execution_options={"synchronize_session": False}
    )
