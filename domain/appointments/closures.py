"""Slots follow the calendar: a day that becomes a holiday after its slots were made closes them.

Slots are made when a day is first listed. A calendar override added later (a typhoon closure, a
regional day off) made listing that day 409 `appointments.closed`, but the slot ids a phone already
held could still be booked or moved into. The override now closes them (no new places), and
removing it opens them again, in its own transaction (a bounded update of one day's slots), and
once more in its follow-up job with the cases and rectifications (domain/applications/
calendar_changes.py). Bookings already made are left to the sweeper's next pass, which
cancels them for the hall and tells their citizens (visits.release_closed): an override taken
back before it keeps them as they were.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.appointments.models import AppointmentSlot, Hall
from domain.appointments.slots import open_hours
from domain.calendar import service as calendar


def follow(session: Session, *, day: date, region: str) -> int:
    """`close_or_open`, committed: the step of an override's follow-up job, which runs it again
    (harmless: the slots are set as the calendar says, not toggled). How many slots changed."""
    changed = close_or_open(session, day=day, region=region)
    session.commit()
    return changed


def close_or_open(session: Session, *, day: date, region: str) -> int:
    """Close or reopen the slots of `day` at the halls under `region` (000000: all) as the
    calendar now says, in the caller's transaction (an override's own: from its answer on, no
    booking or move lands on a day it closed). How many slots changed.

    The calendar is read under its lock (shared) until the commit: an override entered meanwhile
    waits, so the job of its follow-ups, written with it, runs on it after this one. Without the
    lock, a job that read the day before it changed could write that stale reading last."""
    calendar.hold(session)
    changed = 0
    for hall in session.scalars(select(Hall)).all():
        if region not in calendar.region_chain(hall.region):
            continue
        closed = not open_hours(session, hall, day)
        done = session.execute(
            update(AppointmentSlot)
            .where(
                AppointmentSlot.hall_id == hall.id,
                AppointmentSlot.day == day,
                AppointmentSlot.closed != closed,
            )
            .values(closed=closed)
            .execution_options(synchronize_session=False)
        )
        changed += done.rowcount or 0
    return changed
