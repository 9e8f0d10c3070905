"""The visit itself: the QR code shown at the hall, check-in with a queue number (取号), no-shows,
and which reminders are due (the day before, one hour before)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import clock
from core.db import is_id
from core.errors import AppError
from domain.accounts.models import Account
from domain.applications.case_numbers import next_serial
from domain.appointments.errors import AlreadyCheckedIn, CancelledByHall, HallNotFound, NotActive, OtherHall
from domain.appointments.models import (
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    HALL_CLOSED,
    NO_SHOW,
    Appointment,
    AppointmentSlot,
    Hall,
    recount_places,
)
from domain.appointments.service import locked, owned
from domain.appointments.slots import BEIJING
from domain.operators.scope import UNSCOPED, Scope

CODE_TTL = timedelta(minutes=5)
EARLY = timedelta(hours=1)  # check-in opens this long before the slot
NO_SHOW_AFTER = timedelta(minutes=30)  # a booking not checked in this long after its slot ends


class BadCheckInCode(AppError):
    status = 422
    code = "appointments.bad_code"
    message_zh = "预约码无效或已过期，请在手机上刷新后重新出示"
    message_en = "The appointment code is invalid or expired; refresh it on the phone"


class NotNow(AppError):
    status = 409
    code = "appointments.not_now"
    message_zh = "不在该预约的签到时间内（开始前 1 小时至结束）"
    message_en = "Outside this appointment's check-in time (from one hour before until its end)"


def _sign(secret: str, message: str) -> str:
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def check_in_code(
    session: Session, *, secret: str, account_id: str, appointment_id: str
) -> tuple[str, datetime]:
    """A short-lived code for the QR shown at the hall (the owner's booked appointment only);
    409 appointments.not_active for a cancelled or moved booking, 409
    appointments.already_checked_in (with the queue number) once checked in, 409
    appointments.cancelled_by_hall for one the hall's closure that day cancelled."""
    appointment = owned(session, account_id, appointment_id)
    if appointment.status == CANCELLED:
        raise NotActive()
    if appointment.status == HALL_CLOSED:
        raise CancelledByHall()
    if appointment.status == CHECKED_IN:
        raise AlreadyCheckedIn(queue_no=appointment.queue_no, details={"queue_no": appointment.queue_no})
    if appointment.status != BOOKED:
        raise NotNow()
    expires = clock.now() + CODE_TTL
    body = f"{appointment.id}.{int(expires.timestamp())}"
    return f"{body}.{_sign(secret, body)}", expires


def check_in(
    session: Session, *, secret: str, code: str, hall_id: str | None, scope: Scope = UNSCOPED
) -> Appointment:
    """Check the citizen in at the officer's hall `hall_id` from the scanned code; gives the
    queue number. Commits. The desk's scanner sends its hall with every scan; an officer
    assigned to halls may scan only at those (403 `admin.out_of_scope`), and one assigned to
    exactly one hall may leave it out (422 `admin.hall_required` otherwise). An unknown hall is
    404 `appointments.hall_not_found`, a booking of another hall 409 `appointments.other_hall`."""
    hall_id = scope.hall_for(hall_id)
    if not is_id(hall_id) or session.get(Hall, hall_id) is None:
        raise HallNotFound()
    try:
        appointment_id, expires, mac = code.rsplit(".", 2)
        # As bytes: compare_digest refuses str with non-ASCII characters (a foreign QR code).
        valid = hmac.compare_digest(mac.encode(), _sign(secret, f"{appointment_id}.{expires}").encode())
        expired = not (expires.isascii() and expires.isdigit()) or int(expires) < clock.timestamp()
    except ValueError:
        raise BadCheckInCode() from None
    if not valid or expired:
        raise BadCheckInCode()
    # The row locked first: a second scan of the same code waits and then gives the same number,
    # a racing cancel waits and then finds it checked in (409), or is done first and this is 409.
    appointment = locked(session, appointment_id)
    if appointment is None:
        raise BadCheckInCode()
    if appointment.hall_id != hall_id:
        booked_at = session.get(Hall, appointment.hall_id)
        name = booked_at.name if booked_at is not None else appointment.hall_id
        raise OtherHall(hall=name, details={"hall_id": appointment.hall_id})
    if appointment.status == CHECKED_IN:
        session.commit()  # ends the transaction (and the lock); nothing to write
        return appointment  # scanned twice: the same number
    if appointment.status == CANCELLED:  # cancelled or moved after the code was shown
        raise NotActive()
    if appointment.status == HALL_CLOSED:
        raise CancelledByHall()
    slot = session.get(AppointmentSlot, appointment.slot_id)
    now = clock.now()
    if appointment.status != BOOKED or slot is None or not (slot.starts_at - EARLY <= now <= slot.ends_at):
        raise NotNow()
    serial = next_serial(session, f"queue:{appointment.hall_id}:{appointment.day.isoformat()}")
    appointment.queue_no = f"A{serial:03d}"
    appointment.status = CHECKED_IN
    appointment.updated_at = now
    session.commit()
    return appointment


def mark_no_shows(session: Session, now: datetime) -> int:
    """Bookings whose slot ended a while ago without check-in become no-shows (flushed). Not on
    a day the calendar closed after they were made (a typhoon): the hall was shut, the citizen
    missed nothing, and three such days would have paused their booking."""
    A, S = Appointment, AppointmentSlot
    ended = select(S.id).where(S.ends_at < now - NO_SHOW_AFTER, S.closed.is_(False)).scalar_subquery()
    result = session.execute(
        update(A).where(A.status == BOOKED, A.slot_id.in_(ended)).values(status=NO_SHOW, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount or 0)


def due_reminders(session: Session, now: datetime) -> list[tuple[Appointment, AppointmentSlot, str]]:
    """Booked appointments whose reminder is due: "day" within 24 h, "hour" within 1 h (none
    to a hall the calendar closed that day)."""
    A, S = Appointment, AppointmentSlot
    rows = session.execute(
        select(A, S).join(S, S.id == A.slot_id).where(A.status == BOOKED, S.starts_at > now,
                                                    S.starts_at <= now + timedelta(hours=24),
                                                    S.closed.is_(False))
    ).all()  # fmt: skip
    out = []
    for appointment, slot in rows:
        kind = "hour" if slot.starts_at <= now + timedelta(hours=1) else "day"
        out.append((appointment, slot, kind))
    return out


def release_closed(session: Session, now: datetime) -> list[tuple[Appointment, AppointmentSlot]]:
    """Booked appointments on a day the calendar closed after they were made (a typhoon, a
    regional day off) are cancelled by the hall (`hall_closed`) and their places given back
    (flushed). The citizen was to choose another time, not travel to a shut hall: the booking
    neither stays active nor becomes a no-show, also when the closure is taken back later (they
    were told it was off). The ones released, with their slots, for the sweeper to tell each
    citizen once per closed day (those already over are released, not told).

    A slot's count afterwards is the bookings on it that still hold a place (`HOLDS_PLACE`: one
    checked in before the closure keeps it), recounted rather than decremented, so a count that
    had drifted above or below its bookings comes right instead of stopping at zero or keeping
    places nobody holds.

    One conditional UPDATE: a cancel or reschedule holding the booking's row is waited for, and
    a booking it changed meanwhile is no longer `booked` here; the recount comes after it.

    Lock order as an account merge's: the bookings' accounts first (FOR KEY SHARE, in the order
    of their ids; the closure notices' rows name them, and their foreign key takes that lock
    anyway), then the bookings, then the slots. Taken only at the notice, after the booking, a
    face check merging the account (accounts FOR UPDATE, then their bookings) deadlocked."""
    A, S = Appointment, AppointmentSlot
    closed_slots = select(S.id).where(S.closed.is_(True)).scalar_subquery()
    owners = select(A.account_id).where(A.status == BOOKED, A.slot_id.in_(closed_slots)).distinct()
    session.execute(
        select(Account.id)
        .where(Account.id.in_(owners))
        .order_by(Account.id)
        .with_for_update(read=True, key_share=True)
    )
    released = session.execute(
        update(A)
        .where(A.status == BOOKED, A.slot_id.in_(closed_slots))
        .values(status=HALL_CLOSED, updated_at=now)
        .returning(A.id, A.slot_id),
        execution_options={"synchronize_session": False},
    ).all()
    # Each affected slot recounted, not decremented: its count becomes the bookings still holding
    # a place there (checked in, a no-show), also when it had drifted above or below them. In the
    # order of the slots' ids (as a reschedule writes two slots).
    for slot_id in sorted({row.slot_id for row in released}):
        recount_places(session, slot_id)
    if not released:
        return []
    return [
        (appointment, slot)
        for appointment, slot in session.execute(
            select(A, S)
            .join(S, S.id == A.slot_id)
            .where(A.id.in_([row.id for row in released]), S.ends_at > now)
            .order_by(S.starts_at)
            .execution_options(populate_existing=True)
        ).all()
    ]


LINK = "/v1/appointments/"  # a notice's link opens the booking it is about


def link(appointment: Appointment) -> str:
    return f"{LINK}{appointment.id}"


def notice_holds(session: Session, event_type: str, notice_link: str | None) -> bool:
    """Whether an appointment notice is still true when one of its messages goes out (it may have
    waited for the quiet hours: a booking made at 22:30 for the next morning is reminded at
    07:00). A reminder holds while its booking is booked: not once the citizen cancelled or moved
    it meanwhile (the old time would send them to the hall at a time they gave up), nor once the
    hall closed its day. A hall's closure notice ("choose another time") holds until the
    citizen has moved the booking. Any other notice holds."""
    if event_type not in ("appointment_reminder", "appointment_closed") or notice_link is None:
        return True
    if not notice_link.startswith(LINK):
        return True
    appointment_id = notice_link.removeprefix(LINK)
    appointment = session.get(Appointment, appointment_id) if is_id(appointment_id) else None
    if appointment is None:
        return False
    if event_type == "appointment_reminder":
        # Nor once the hall closed the day (overnight, before the sweeper releases the booking):
        # "bring your ID at 09:00" for a shut hall, then "the hall is closed" minutes later.
        slot = session.get(AppointmentSlot, appointment.slot_id)
        return appointment.status == BOOKED and not (slot is not None and slot.closed)
    return appointment.moved_to is None and appointment.status in (BOOKED, HALL_CLOSED)


def local_time(at: datetime) -> str:
    """A slot's start as a reminder shows it: Beijing time, in the form every template's `{time}`
    takes (`2026-12-08 09:30`), read alike in the Chinese and English texts and valid for a
    WeChat `time` keyword."""
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
