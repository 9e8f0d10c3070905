"""Where and when a citizen can book: halls, their opening hours on a day (on the catalog
calendar), and a day's slots of an item, made on first ask, with places left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core import clock
from core.db import new_id
from domain.appointments.errors import BadDate, Closed, HallNotFound, NotServedHere
from domain.appointments.models import AppointmentSlot, Hall
from domain.calendar import service as calendar

BEIJING = ZoneInfo("Asia/Shanghai")
BOOKING_DAYS = 14  # how far ahead a citizen can book


@dataclass(frozen=True)
class SlotView:
    id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    available: int


def region_prefix(region: str) -> str:
    """The prefix of the hall codes a GB/T 2260 code covers: a province (XX0000) its first two
    digits, a city (XXXX00) its first four, a county all six. Only whole "00" pairs at the city
    and province level are dropped: a county's own trailing 0 is part of its number (310110
    杨浦区 must not match 310112 闵行区 or 310115 浦东新区). A longer (town) code matches itself."""
    if len(region) == 6 and region[2:] == "0000":
        return region[:2]
    if len(region) == 6 and region[4:] == "00":
        return region[:4]
    return region


def halls(session: Session, *, service_code: str | None = None, region: str | None = None) -> list[Hall]:
    """Halls, optionally those handling one item or inside one region (province, city or county)."""
    prefix = None if region is None else region_prefix(region)
    rows = session.scalars(select(Hall).order_by(Hall.name)).all()
    return [
        h for h in rows
        if (service_code is None or service_code in (h.service_codes or []))
        and (prefix is None or h.region.startswith(prefix))
    ]  # fmt: skip


def _periods(hall: Hall, weekday: int) -> list[tuple[time, time]]:
    raw = (hall.opening_hours or {}).get(str(weekday)) or []
    return [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in raw]


def open_hours(session: Session, hall: Hall, day: date) -> list[tuple[time, time]]:
    """The hall's hours on `day` (none: closed). A working day opens with its weekday's hours; a
    weekend the calendar made a working day (调休上班) with the hall's first Monday-to-Friday
    hours, as halls keep office hours then; an ordinary weekend with the hall's own weekend
    hours, if it has any; a public holiday (or a day an override closed) not at all."""
    if calendar.is_working_day(session, day, region=hall.region):
        periods = _periods(hall, day.isoweekday())
        if not periods and day.isoweekday() >= 6:
            periods = next((p for weekday in range(1, 6) if (p := _periods(hall, weekday))), [])
        return periods
    if calendar.is_public_holiday(session, day, region=hall.region):
        return []
    return _periods(hall, day.isoweekday())


def slots(session: Session, *, service_code: str, hall_id: str, day: date) -> list[SlotView]:
    """The day's slots of an item at a hall (made on first ask), with places left; today's slots
    that have already started are left out, as booking refuses them. Commits."""
    hall = session.get(Hall, hall_id)
    if hall is None:
        raise HallNotFound()
    if service_code not in (hall.service_codes or []):
        raise NotServedHere()
    today = clock.now().astimezone(BEIJING).date()
    if not today <= day <= today + timedelta(days=BOOKING_DAYS):
        raise BadDate(days=BOOKING_DAYS)
    if not open_hours(session, hall, day):
        raise Closed()
    query = (
        select(AppointmentSlot)
        .where(AppointmentSlot.hall_id == hall.id, AppointmentSlot.service_code == service_code,
               AppointmentSlot.day == day)
        .order_by(AppointmentSlot.starts_at)
    )  # fmt: skip
    rows = session.scalars(query).all()
    if not rows:  # the first ask for this day makes them (a racing ask makes the same rows)
        _ensure_slots(session, hall, service_code, day)
        rows = session.scalars(query).all()
        if not rows and not open_hours(session, hall, day):
            raise Closed()  # closed by an override entered meanwhile
    # Left out rather than shown with 0 places: on the phone 0 reads as "full", and a time that
    # has begun can never be booked (the same `starts_at > now` rule as `book`).
    now = clock.now()
    return [
        SlotView(s.id, s.starts_at, s.ends_at, s.capacity, max(0, s.capacity - s.booked))
        for s in rows
        if s.starts_at > now
    ]


def _ensure_slots(session: Session, hall: Hall, service_code: str, day: date) -> None:
    """Make the day's slots from its opening hours, read under the calendar lock (shared): an
    override entered at the same moment either waits for these slots and then closes them
    (closures.follow sees them), or commits first and no slot of the closed day is made."""
    step = timedelta(minutes=hall.slot_minutes)
    capacity = hall.windows * hall.capacity_per_window
    values = []
    calendar.hold(session)
    for opens, closes in open_hours(session, hall, day):
        start = datetime.combine(day, opens, tzinfo=BEIJING)
        end = datetime.combine(day, closes, tzinfo=BEIJING)
        while start + step <= end:
            values.append({
                "id": new_id(), "hall_id": hall.id, "service_code": service_code, "day": day,
                "starts_at": start, "ends_at": start + step, "capacity": capacity, "booked": 0,
            })  # fmt: skip
            start += step
    if not values:
        session.commit()  # the calendar lock goes with the transaction
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(AppointmentSlot).values(values).on_conflict_do_nothing())
    session.commit()
