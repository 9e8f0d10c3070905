"""Bookings of the slots (domain/appointments/slots.py): never overbooked.

A slot row carries `capacity` and `booked`; a booking takes a place with one conditional UPDATE
(`booked = booked + 1 WHERE booked < capacity`), so concurrent bookings cannot pass the capacity
on PostgreSQL or SQLite, and the citizen's booking row is written in the same transaction. A
unique index keeps one active booking per citizen, item and day, also under races.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Interval, bindparam, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import constraint_of, is_id, lock_one, new_id
from core.db_statements import run_precompiled
from domain.accounts import open_guard
from domain.accounts.errors import AccountNotFound
from domain.accounts.models import DELETED, Account
from domain.appointments.errors import (
    AlreadyBooked,
    AppointmentNotFound,
    BookingPaused,
    Closed,
    NotChangeable,
    SlotFull,
    SlotInPast,
    SlotNotFound,
)
from domain.appointments.models import (
    ACTIVE,
    BOOKED,
    CANCELLED,
    HALL_CLOSED,
    NO_SHOW,
    Appointment,
    AppointmentSlot,
)
from domain.appointments.slots import BEIJING

NO_SHOW_LIMIT = 3  # missed appointments within NO_SHOW_WINDOW pause booking for NO_SHOW_PAUSE
NO_SHOW_WINDOW = timedelta(days=30)
NO_SHOW_PAUSE = timedelta(days=7)
# No-shows that can still count: a pause runs from the latest one and counts those in the
# window before it.
NO_SHOW_LOOKBACK = NO_SHOW_WINDOW + NO_SHOW_PAUSE


@dataclass(frozen=True)
class Booking:
    """A booking as the citizen sees it (plain values, read before the transaction ends)."""

    id: str
    hall_id: str
    service_code: str
    slot_id: str
    day: date
    starts_at: datetime | None
    status: str
    queue_no: str | None
    created_at: datetime
    moved_to: str | None = None  # the booking a reschedule moved this one to

    @classmethod
    def of(cls, a: Appointment, starts_at: datetime | None) -> Booking:
        return cls(
            a.id, a.hall_id, a.service_code, a.slot_id, a.day, starts_at, a.status, a.queue_no, a.created_at,
            a.moved_to,
        )  # fmt: skip


def book(session: Session, *, account_id: str, slot_id: str) -> Booking:
    """Take a place in a slot; 409 when it is past, full, closed (its day became a holiday), or
    the citizen already has that day's booking for the item (or is paused after no-shows). Commits.

    On PostgreSQL one statement does it all: a data-modifying CTE claims the place only if the
    slot is open and the citizen's rules allow it, and inserts the booking from the claimed row;
    run outside an explicit transaction it is atomic and costs one round trip (no BEGIN, no
    COMMIT). Elsewhere (SQLite) the claim returns the citizen's rule figures and the row is
    inserted after it, in one transaction. A claim that fails is explained afterwards, in the
    order the citizen should hear it: no such slot, past, their own rules, full."""
    now = clock.now()
    if session.get_bind().dialect.name == "postgresql":
        made = _book_in_one_statement(session, account_id, slot_id, now)
    else:
        made = _book_in_two_statements(session, account_id, slot_id, now)
    if made is None:
        _explain_refusal(session, account_id, slot_id, now)
    return made  # type: ignore[return-value]  # _explain_refusal always raises


def _book_in_one_statement(session: Session, account_id: str, slot_id: str, now: datetime) -> Booking | None:
    booking_id = new_id()
    try:  # its own transaction (autocommit) unless the session already has one open
        got = run_precompiled(
            session, _one_statement(),
            {"slot_id": slot_id, "account_id": account_id, "booking_id": booking_id, "now": now,
             "missed_since": now - NO_SHOW_LOOKBACK, "paused_since": now - NO_SHOW_PAUSE},
        ).first()  # fmt: skip
    except IntegrityError as exc:
        if not _booked_meanwhile(session, exc):
            raise
        raise AlreadyBooked() from None
    session.commit()
    if got is None:
        return None
    return Booking(
        id=booking_id, hall_id=got.hall_id, service_code=got.service_code, slot_id=slot_id, day=got.day,
        starts_at=got.starts_at, status=BOOKED, queue_no=None, created_at=now,
    )  # fmt: skip


@functools.cache
def _one_statement() -> Any:
    """The booking statement, built once (parameters bound per booking): building the expression
    costs more CPU than PostgreSQL spends running it."""
    S, A = AppointmentSlot, Appointment.__table__
    when = Appointment.updated_at.type
    account_id, now = bindparam("account_id", type_=A.c.account_id.type), bindparam("now", type_=when)
    figures = _rule_figures(account_id, bindparam("missed_since", type_=when), S.service_code, S.day)
    # The account, FOR KEY SHARE: a closure under way (FOR UPDATE) is waited for, and a closed
    # account claims nothing (then explained as such). No round trip of its own.
    open_account = exists(
        select(Account.id)
        .where(Account.id == account_id, Account.status != DELETED)
        .with_for_update(read=True, key_share=True)
    )
    claimed = (
        update(S)
        .where(S.id == bindparam("slot_id", type_=S.id.type), S.booked < S.capacity, S.starts_at > now,
               S.closed.is_(False), open_account,
               _rules_allow(*figures, bindparam("paused_since", type_=when)))
        .values(booked=S.booked + 1)
        .returning(S.id, S.hall_id, S.service_code, S.day, S.starts_at)
        .cte("claimed")
    )  # fmt: skip
    row = select(
        bindparam("booking_id", type_=A.c.id.type), account_id, claimed.c.id, claimed.c.hall_id,
        claimed.c.service_code, claimed.c.day, literal(BOOKED), now, now,
    ).select_from(claimed)  # fmt: skip
    return (
        insert(A)
        .from_select(["id", "account_id", "slot_id", "hall_id", "service_code", "day", "status",
                      "created_at", "updated_at"], row)
        .returning(A.c.hall_id, A.c.service_code, A.c.day,
                   select(claimed.c.starts_at).scalar_subquery().label("starts_at"))
    )  # fmt: skip


def _book_in_two_statements(session: Session, account_id: str, slot_id: str, now: datetime) -> Booking | None:
    S = AppointmentSlot
    slot = session.execute(
        update(S)
        .where(S.id == slot_id, S.booked < S.capacity, S.starts_at > now, S.closed.is_(False))
        .values(booked=S.booked + 1)
        .returning(S.id, S.hall_id, S.service_code, S.day, S.starts_at),
        execution_options={"synchronize_session": False},
    ).first()  # fmt: skip
    if slot is None:
        session.rollback()
        return None
    # The slot's UPDATE took SQLite's one write lock (waiting for a closure under way): the
    # account read now is what the closure left.
    if session.scalar(select(Account.status).where(Account.id == account_id)) in (None, DELETED):
        session.rollback()
        raise AccountNotFound()
    # The rules' figures are read with the slot's values, not correlated inside RETURNING:
    # SQLite's RETURNING names columns unqualified, so `day = day` in the subquery compared the
    # bookings' own columns, and any active booking of any item or day counted as that day's.
    figures = session.execute(
        select(*_rule_figures(account_id, now - NO_SHOW_LOOKBACK, slot.service_code, slot.day))
    ).one()
    try:
        _apply_rules(figures, now)
    except Exception:
        session.rollback()  # the place goes back
        raise
    made = Booking(
        id=new_id(), hall_id=slot.hall_id, service_code=slot.service_code, slot_id=slot.id, day=slot.day,
        starts_at=slot.starts_at, status=BOOKED, queue_no=None, created_at=now,
    )  # fmt: skip
    try:  # a plain INSERT: the booking needs nothing of the ORM's unit of work
        session.execute(
            insert(Appointment.__table__),
            [{"id": made.id, "account_id": account_id, "slot_id": made.slot_id, "hall_id": made.hall_id,
              "service_code": made.service_code, "day": made.day, "status": BOOKED, "queue_no": None,
              "created_at": now, "updated_at": now}],
        )  # fmt: skip
    except IntegrityError as exc:
        if not _booked_meanwhile(session, exc):
            raise
        raise AlreadyBooked() from None
    session.commit()
    return made


def _explain_refusal(session: Session, account_id: str, slot_id: str, now: datetime) -> None:
    """Why a claim took no place: the account closed meanwhile, no such slot, past, the
    citizen's own rules, else full."""
    if session.scalar(select(Account.status).where(Account.id == account_id)) in (None, DELETED):
        raise AccountNotFound()
    found = session.get(AppointmentSlot, slot_id)
    if found is None:
        raise SlotNotFound()
    if found.starts_at <= now:
        raise SlotInPast()
    if found.closed:
        raise Closed()
    figures = session.execute(
        select(*_rule_figures(account_id, now - NO_SHOW_LOOKBACK, found.service_code, found.day))
    ).one()
    _apply_rules(figures, now)
    raise SlotFull()


def _rule_figures(account_id: Any, missed_since: Any, service_code: Any, day: Any) -> tuple[Any, ...]:
    """What the booking rules need, as scalar subqueries: of the citizen's no-shows since
    `missed_since` (now - NO_SHOW_LOOKBACK) the latest and the NO_SHOW_LIMIT-th latest, and
    their active bookings of the item that day. Arguments are values or bound parameters;
    `service_code` and `day` may be the slot's own columns inside the claim (correlated)."""
    A = Appointment
    missed = (A.account_id == account_id) & (A.status == NO_SHOW) & (A.updated_at > missed_since)
    active = (A.account_id == account_id) & (A.service_code == service_code) & (A.day == day)
    return (
        select(A.updated_at)
        .where(missed)
        .order_by(A.updated_at.desc())
        .offset(NO_SHOW_LIMIT - 1)
        .limit(1)
        .scalar_subquery()
        .label("limit_missed"),
        select(func.max(A.updated_at)).where(missed).scalar_subquery().label("last_missed"),
        select(func.count())
        .select_from(A)
        .where(active & or_(*(A.status == s for s in ACTIVE)))  # no expanding IN: compiled once
        .correlate(AppointmentSlot)
        .scalar_subquery()
        .label("active"),
    )


ONE_PER_DAY = "uq_appointments_one_per_day"


def _booked_meanwhile(session: Session, exc: IntegrityError) -> bool:
    """Whether a booking insert the database refused was refused by the one-booking-per-day index
    (the same citizen booked that day a moment ago, past the rule's check: 409
    `appointments.already_booked`); any other integrity error stays itself, never passed off as a
    booking the citizen does not have. Rolls the transaction back either way (the claimed place
    goes back)."""
    session.rollback()
    return constraint_of(exc) == ONE_PER_DAY


def _apply_rules(figures: Any, now: datetime) -> None:
    """NO_SHOW_LIMIT no-shows within NO_SHOW_WINDOW pause booking for NO_SHOW_PAUSE from the
    latest of them (the date the citizen is told holds: an older no-show leaving the window
    meanwhile does not end the pause early); one active booking per item and day."""
    _apply_pause(figures, now)
    if figures.active:
        raise AlreadyBooked()


def _apply_pause(figures: Any, now: datetime) -> None:
    """403 appointments.booking_paused while the citizen's no-shows pause booking (see _apply_rules)."""
    limit_missed, last_missed = figures.limit_missed, figures.last_missed
    if (
        limit_missed is not None
        and last_missed + NO_SHOW_PAUSE > now
        and limit_missed > last_missed - NO_SHOW_WINDOW
    ):
        until = last_missed + NO_SHOW_PAUSE
        raise BookingPaused(until=until.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"))


def _rules_allow(limit_missed: Any, last_missed: Any, active: Any, paused_since: Any) -> Any:
    """_apply_rules as a SQL condition over _rule_figures' subqueries (true: the rules allow);
    `paused_since` is now - NO_SHOW_PAUSE. PostgreSQL only (interval arithmetic); without an
    NO_SHOW_LIMIT-th no-show the condition is false, never NULL."""
    window = bindparam("no_show_window", NO_SHOW_WINDOW, type_=Interval())
    paused = limit_missed.is_not(None) & (last_missed > paused_since) & (limit_missed > last_missed - window)
    return ~paused & (active == 0)


def _active_that_day(session: Session, account_id: str, service_code: str, day: date) -> Appointment | None:
    A = Appointment
    return session.scalar(
        select(A).where(A.account_id == account_id, A.service_code == service_code, A.day == day,
                        A.status.in_(ACTIVE))
    )  # fmt: skip


def _claim(session: Session, slot_id: str) -> None:
    """Take a place in the slot (its row stays locked until the transaction ends); 409 when full,
    closed (a calendar override committed since the slot was read) or started meanwhile: the
    statement re-checks the row it waited for, so a closure that crossed the read wins."""
    S = AppointmentSlot
    now = clock.now()
    taken = session.execute(
        update(S)
        .where(S.id == slot_id, S.booked < S.capacity, S.closed.is_(False), S.starts_at > now)
        .values(booked=S.booked + 1),
        execution_options={"synchronize_session": False},
    ).rowcount
    if not taken:
        closed, starts_at = session.execute(select(S.closed, S.starts_at).where(S.id == slot_id)).one()
        session.rollback()
        if closed:
            raise Closed()
        if starts_at <= now:
            raise SlotInPast()
        raise SlotFull()


def _insert_booking(session: Session, slot: AppointmentSlot, account_id: str, now: datetime) -> Appointment:
    appointment = Appointment(
        account_id=account_id, slot_id=slot.id, hall_id=slot.hall_id, service_code=slot.service_code,
        day=slot.day, status=BOOKED, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(appointment)
    try:
        session.flush()
    except IntegrityError as exc:
        if not _booked_meanwhile(session, exc):
            raise
        raise AlreadyBooked() from None
    return appointment


BY_ID = Appointment.id == bindparam("appointment_id")  # built once: cancel, reschedule, check-in


def locked(session: Session, appointment_id: str) -> Appointment | None:
    """The booking read afresh with its row locked until the transaction ends, so a racing cancel,
    reschedule or check-in of it waits and then sees what this one wrote (PostgreSQL: SELECT ...
    FOR UPDATE; SQLite: the database's write lock, taken first). Lock order: the booking before
    any slot. None when there is no such booking."""
    if not is_id(appointment_id):
        return None
    return lock_one(session, Appointment, BY_ID, params={"appointment_id": appointment_id})


def owned(session: Session, account_id: str, appointment_id: str, *, lock: bool = False) -> Appointment:
    """The citizen's booking (404 for anyone else's); `lock=True` for a write (see `locked`)."""
    if lock:
        appointment = locked(session, appointment_id)
    else:
        appointment = session.get(Appointment, appointment_id) if is_id(appointment_id) else None
    if appointment is None or appointment.account_id != account_id:
        raise AppointmentNotFound()
    return appointment


def _release(session: Session, slot_id: str) -> None:
    S = AppointmentSlot
    session.execute(
        update(S).where(S.id == slot_id, S.booked > 0).values(booked=S.booked - 1),
        execution_options={"synchronize_session": False},
    )


def _close(session: Session, appointment: Appointment, now: datetime) -> None:
    """Cancel a booked appointment (locked by the caller); 409 unless it is still booked."""
    A = Appointment
    closed = session.execute(
        update(A).where(A.id == appointment.id, A.status == BOOKED).values(status=CANCELLED, updated_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    if not closed:  # cannot happen under the row lock; never give a place back twice
        session.rollback()
        raise NotChangeable()


def _mark_moved(session: Session, appointment: Appointment, successor: Appointment) -> None:
    """Record on the closed booking the one a reschedule moved it to. A second UPDATE after the
    successor's INSERT: the foreign key needs the successor's row, and the successor can only be
    inserted once the old booking is closed (the one-active-per-day index counts both)."""
    A = Appointment
    session.execute(
        update(A)
        .where(A.id == appointment.id, A.status.in_((CANCELLED, HALL_CLOSED)))
        .values(moved_to=successor.id),
        execution_options={"synchronize_session": False},
    )


def cancel(session: Session, *, account_id: str, appointment_id: str) -> Appointment:
    """Give the place back (before the slot starts). Cancelling twice, or a booking the hall's
    closure cancelled (its place is back already), changes nothing; a booking moved by a
    reschedule meanwhile (`moved_to` set) is 409: its successor stays. Commits.

    The booking's row is locked first: a racing cancel, reschedule or check-in of it waits, then
    finds it changed (409) or cancelled (the same answer), and the place is given back once."""
    appointment = owned(session, account_id, appointment_id, lock=True)
    if appointment.status in (CANCELLED, HALL_CLOSED):
        if appointment.moved_to is not None:
            raise NotChangeable()
        session.commit()  # ends the transaction (and the lock); nothing to write
        return appointment
    slot = session.get(AppointmentSlot, appointment.slot_id)
    now = clock.now()
    if appointment.status != BOOKED or slot is None or slot.starts_at <= now:
        raise NotChangeable()
    _close(session, appointment, now)
    _release(session, appointment.slot_id)
    session.commit()
    session.refresh(appointment)
    return appointment


def reschedule(session: Session, *, account_id: str, appointment_id: str, slot_id: str) -> Appointment:
    """Move a booking to another slot of the same item: the new place is taken and the old one
    given back in one transaction, so a full new slot leaves the old booking as it was; the old
    booking ends cancelled with `moved_to` naming the new one. Commits.

    A booking the hall's closure cancelled (`hall_closed`) moves too, once and at any time (the
    citizen was asked to choose another time; its place is back already). The no-show pause
    applies to a move as to a booking (403 appointments.booking_paused; the old booking stays),
    except out of a day the hall closed: the citizen did not give up that place.

    The account is locked first (FOR KEY SHARE, as the new booking's row needs anyway:
    `open_guard`), so an account merge holding it (FOR UPDATE, then the bookings) is waited for
    before the booking, not after: the other order deadlocked. Then the booking's row (a racing
    cancel, reschedule or check-in waits, then gets 409); the two slots are then written in the
    order of their ids, so two reschedules crossing the same two slots cannot deadlock."""
    open_guard.lock_for_change(session, account_id)
    appointment = owned(session, account_id, appointment_id, lock=True)
    old_slot = session.get(AppointmentSlot, appointment.slot_id)
    now = clock.now()
    by_hall = appointment.status == HALL_CLOSED and appointment.moved_to is None
    if not by_hall and (appointment.status != BOOKED or old_slot is None or old_slot.starts_at <= now):
        raise NotChangeable()
    new_slot = session.get(AppointmentSlot, slot_id)
    if new_slot is None or new_slot.service_code != appointment.service_code:
        raise SlotNotFound()
    if new_slot.starts_at <= now:
        raise SlotInPast()
    if new_slot.closed:
        raise Closed()
    if not by_hall and new_slot.id == appointment.slot_id:
        session.commit()  # ends the transaction (and the lock); nothing to write
        return appointment
    if not (by_hall or old_slot.closed):
        figures = session.execute(
            select(*_rule_figures(account_id, now - NO_SHOW_LOOKBACK, new_slot.service_code, new_slot.day))
        ).one()
        _apply_pause(figures, now)
    if (by_hall or new_slot.day != appointment.day) and _active_that_day(
        session, account_id, new_slot.service_code, new_slot.day
    ):  # the unique index is the guard under races; this is the clear answer otherwise
        raise AlreadyBooked()
    if by_hall:  # closed and its place given back already: only the new place to take
        _claim(session, new_slot.id)
    else:
        # Close the old booking first (the one-per-day index counts active rows), then the
        # places, then the new booking, then point the old one at it; any refusal rolls
        # everything back.
        _close(session, appointment, now)
        for slot_id in sorted((appointment.slot_id, new_slot.id)):
            if slot_id == new_slot.id:
                _claim(session, new_slot.id)
            else:
                _release(session, slot_id)
    moved = _insert_booking(session, new_slot, account_id, now)
    _mark_moved(session, appointment, moved)
    session.commit()
    return moved


def mine(session: Session, account_id: str) -> list[Appointment]:
    A = Appointment
    return list(
        session.scalars(
            select(A).where(A.account_id == account_id).order_by(A.day.desc(), A.created_at.desc())
        )
    )


def slot_of(session: Session, appointment: Appointment) -> AppointmentSlot | None:
    return session.get(AppointmentSlot, appointment.slot_id)
