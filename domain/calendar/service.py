"""The working-day calendar: due dates from time limits, and the local override table.

China's statutory holidays and adjusted working days (调休) come from the `chinese-calendar`
package, updated by bumping the dependency when the State Council publishes next year's
arrangement. Regions add their own days off or extra working days as overrides.

The year after the package's last known year is provisional: until the package learns it,
weekends and New Year's Day are days off, and the nationwide overrides operators enter from the
State Council's notice (plus regional ones) supply the rest; due dates in it say `provisional`.
Cases accepted in December must get a due date in January. Beyond that year every computation
refuses with CalendarOutOfRange.
"""

from __future__ import annotations

import calendar as stdlib_calendar
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import take_write_lock
from core.errors import Text
from domain.calendar.errors import (
    CalendarOutOfRange,
    InvalidOverride,
    InvalidRegion,
    InvalidTimeLimit,
    OverrideExists,
    OverrideNotFound,
)
from domain.calendar.models import KIND_WORKDAY, KINDS, NATIONWIDE, CalendarOverride
from domain.operators.audit_log import Actor, record

UNIT_WORKING_DAY = "working_day"
UNIT_NATURAL_DAY = "natural_day"
UNIT_MONTH = "month"
UNITS = (UNIT_WORKING_DAY, UNIT_NATURAL_DAY, UNIT_MONTH)
# Upper bounds on a time limit: generous for any statute, small enough that a typo cannot walk
# the calendar for decades.
MAX_VALUE = {UNIT_WORKING_DAY: 1000, UNIT_NATURAL_DAY: 3650, UNIT_MONTH: 120}
MAX_REASON = 200

_REGION_RE = re.compile(r"[0-9]{6}")  # ASCII digits only (`\d` takes full-width ones too)
# GB/T 2260 province-level prefixes; a code outside these is a typo, not a place.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)
# A due-date computation loads overrides for this many days beyond its estimate at once; past
# that window (rare: many local holidays) it loads the next window.
_SLACK_DAYS = 31


# The advisory lock that orders a change of the calendar against due dates computed on it.
_CALENDAR_LOCK = int.from_bytes(hashlib.sha256(b"yiwang:calendar").digest()[:8], "big") >> 1


def hold(session: Session, *, exclusive: bool = False) -> None:
    """Until the transaction ends (PostgreSQL: an advisory lock; SQLite: its one write lock): an
    override's write holds it exclusively, a due-date computation shared. A case accepted while
    an override is entered then either counts on the new calendar (it waited for the override's
    commit) or is visible, accepted, to the override's follow-up (the override waited for it):
    without it the follow-up could miss a case whose acceptance was in flight."""
    if session.get_bind().dialect.name == "postgresql":
        lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
        session.execute(select(lock(_CALENDAR_LOCK)))
    else:  # SQLite: its one write lock, taken now rather than at the transaction's first write
        take_write_lock(session, CalendarOverride.__table__, CalendarOverride.id == "")


@functools.cache
def supported_range() -> tuple[date, date]:
    """First and last day whose holiday arrangement the installed chinese-calendar knows."""
    # The package itself accepts exactly the years present in its holiday table.
    years = [d.year for d in chinese_calendar.constants.holidays]
    return date(min(years), 1, 1), date(max(years), 12, 31)


def last_statutory_date() -> date:
    """The last day of the newest year whose arrangement the installed package knows."""
    return supported_range()[1]


def last_supported_date() -> date:
    """The last day a due date may fall on (31 December of the provisional year)."""
    return date(supported_range()[1].year + 1, 12, 31)


def _provisional_working(day: date) -> bool:
    """A day of the provisional year without an override: Monday-Friday except 1 January."""
    return day.weekday() < 5 and (day.month, day.day) != (1, 1)


def normalize_region(region: str) -> str:
    """Validate a GB/T 2260 region code ("000000" = nationwide) and return it."""
    region = (region or "").strip()
    if not _REGION_RE.fullmatch(region) or (region != NATIONWIDE and region[:2] not in _PROVINCES):
        raise InvalidRegion(
            fields={
                "region": [
                    Text(
                        "a 6-digit GB/T 2260 code, 000000 for nationwide",
                        "须为 6 位 GB/T 2260 行政区划代码，全国为 000000",
                    )
                ]
            }
        )
    return region


def region_chain(region: str) -> list[str]:
    """The codes whose overrides apply to `region`, most specific first.

    A district (440106) inherits its city's (440100) and province's (440000) overrides, e.g.
    Guangxi's 三月三 holiday registered once for 450000, then the nationwide ones.
    """
    region = normalize_region(region)
    chain = [region, region[:4] + "00", region[:2] + "0000", NATIONWIDE]
    return list(dict.fromkeys(chain))


class _Days:
    """Working-day answers for one region; overrides are loaded per date window, not per day."""

    def __init__(self, session: Session, region: str) -> None:
        self.session = session
        self.chain = region_chain(region)
        self.first, self.statutory_last = supported_range()
        self.last = last_supported_date()
        self.kinds: dict[date, str] = {}
        self.window: tuple[date, date] | None = None

    def check(self, day: date) -> None:
        if not self.first <= day <= self.last:
            raise CalendarOutOfRange(day=day, first_supported=self.first, last_supported=self.last)

    def load(self, lo: date, hi: date) -> None:
        """Load the overrides of [lo, hi] (clamped to the supported range) in one query."""
        lo, hi = max(lo, self.first), min(hi, self.last)
        if self.window and self.window[0] <= lo and hi <= self.window[1]:
            return
        rank = {code: i for i, code in enumerate(self.chain)}
        best: dict[date, tuple[int, str]] = {}
        rows = self.session.execute(
            select(CalendarOverride.region, CalendarOverride.day, CalendarOverride.kind).where(
                CalendarOverride.region.in_(self.chain), CalendarOverride.day.between(lo, hi)
            )
        )
        for code, day, kind in rows:
            if day not in best or rank[code] < best[day][0]:
                best[day] = (rank[code], kind)
        self.kinds = {day: kind for day, (_, kind) in best.items()}
        self.window = (lo, hi)

    def is_working(self, day: date) -> bool:
        self.check(day)
        if not (self.window and self.window[0] <= day <= self.window[1]):
            self.load(day, day + timedelta(days=_SLACK_DAYS))
        kind = self.kinds.get(day)
        if kind is not None:
            return kind == KIND_WORKDAY
        if day > self.statutory_last:
            return _provisional_working(day)
        return chinese_calendar.is_workday(day)


def is_public_holiday(session: Session, day: date, *, region: str) -> bool:
    """Whether `day` is a day off other than an ordinary weekend: a statutory holiday (a weekend
    inside one included), or a day an override closed (a typhoon). A hall with weekend hours
    opens on ordinary weekends, not on these."""
    days = _Days(session, region)
    days.check(day)
    days.load(day, day)
    if days.is_working(day):
        return False
    if day in days.kinds:  # an override made it a day off
        return True
    if day > days.statutory_last:
        return day.isoweekday() < 6  # 1 January, the one holiday counted without the data
    _, name = chinese_calendar.get_holiday_detail(day)
    return name is not None or day.isoweekday() < 6


def is_working_day(session: Session, day: date, *, region: str) -> bool:
    """Whether `day` is a working day in `region` (statutory calendar plus overrides)."""
    days = _Days(session, region)
    days.check(day)
    days.load(day, day)
    return days.is_working(day)


@dataclass(frozen=True)
class DueDate:
    """A computed due date and the non-working days the count passed over."""

    start: date
    value: int
    unit: str
    region: str
    due: date
    skipped: list[date] = field(default_factory=list)

    @property
    def provisional(self) -> bool:
        """True when the due date lies in the year the statutory data does not cover yet."""
        return self.due > last_statutory_date()


def _walk_working_days(days: _Days, start: date, n: int) -> tuple[date, list[date]]:
    if n == 0:
        return start, []
    # Most limits end within n*7/5 days plus one long holiday; one window covers them.
    days.load(start + timedelta(days=1), start + timedelta(days=n * 7 // 5 + _SLACK_DAYS))
    day, counted, skipped = start, 0, []
    while counted < n:
        day += timedelta(days=1)
        if days.is_working(day):
            counted += 1
        else:
            skipped.append(day)
    return day, skipped


def add_working_days(session: Session, start: date, n: int, *, region: str) -> date:
    """The day on which a limit of `n` working days counted from `start` ends.

    Rule ("自受理之日起 N 个工作日", 行政许可法 第八十二条): the start day itself is not
    counted, whether or not it is a working day; counting begins the next day and only working
    days count (weekends and statutory holidays are skipped, adjusted working Saturdays and
    Sundays count, local overrides apply). The due date is the n-th working day after `start`,
    so it is always a working day. n = 0 (an on-the-spot service, 即办) returns `start` itself.
    """
    return _due_working(session, start, n, region=region).due


def working_days_before(session: Session, end: date, n: int, *, region: str) -> date:
    """The n-th working day of `region` before `end` (`end` itself not counted, as
    `add_working_days` counts forward); n = 0 returns `end`. One query for the overrides."""
    if n == 0:
        return end
    days = _Days(session, region)
    days.check(end)
    days.load(end - timedelta(days=n * 7 // 5 + _SLACK_DAYS), end - timedelta(days=1))
    day, counted = end, 0
    while counted < n:
        day -= timedelta(days=1)
        counted += days.is_working(day)
    return day


def _check_value(value: int, unit: str) -> None:
    if unit not in UNITS:
        raise InvalidTimeLimit(
            fields={"unit": [Text(f"one of {', '.join(UNITS)}", f"须为 {'、'.join(UNITS)} 之一")]},
            problem=Text("the unit is not known", "时限单位不正确"),
        )
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE[unit]:
        top = MAX_VALUE[unit]
        raise InvalidTimeLimit(
            fields={"value": [Text(f"an integer from 0 to {top}", f"须为 0 至 {top} 的整数")]},
            problem=Text(f"the value must be from 0 to {top}", f"时限须在 0 至 {top} 之间"),
        )


def _due_working(session: Session, start: date, n: int, *, region: str) -> DueDate:
    _check_value(n, UNIT_WORKING_DAY)
    days = _Days(session, region)
    days.check(start)
    due, skipped = _walk_working_days(days, start, n)
    return DueDate(start, n, UNIT_WORKING_DAY, days.chain[0], due, skipped)


def working_days_between(session: Session, a: date, b: date, *, region: str) -> int:
    """Working days in (a, b]: the count add_working_days(a, n) needs to reach b; negative if b < a."""
    if b < a:
        return -working_days_between(session, b, a, region=region)
    days = _Days(session, region)
    days.check(a)
    days.check(b)
    days.load(a + timedelta(days=1), b)
    return sum(days.is_working(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))


def add_months(start: date, months: int) -> date:
    """The same day `months` calendar months later, clamped to the end of a shorter month."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last_day = stdlib_calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last_day))


def due_date(
    session: Session,
    start: date,
    value: int,
    unit: str = UNIT_WORKING_DAY,
    *,
    region: str,
    roll_to_working_day: bool = True,
) -> DueDate:
    """The due date of a time limit of `value` `unit`s counted from `start`, with the days skipped.

    working_day: see add_working_days. natural_day: `start` + value calendar days. month: the
    same day `value` months later, or that month's last day when it has no such day (民法典
    第二百零二条). For natural days and months, a limit whose last day is not a working day
    ends on the next working day (民法典 第二百零三条); `skipped` then lists the days rolled
    over. value = 0 returns `start` unchanged in every unit.
    """
    _check_value(value, unit)
    if unit == UNIT_WORKING_DAY:
        return _due_working(session, start, value, region=region)
    days = _Days(session, region)
    days.check(start)
    end = start + timedelta(days=value) if unit == UNIT_NATURAL_DAY else add_months(start, value)
    skipped: list[date] = []
    days.check(end)
    if value and roll_to_working_day:
        days.load(end, end + timedelta(days=_SLACK_DAYS))
        while not days.is_working(end):
            skipped.append(end)
            end += timedelta(days=1)
    return DueDate(start, value, unit, days.chain[0], end, skipped)


# --- The override table ---------------------------------------------------------------------


def _check_override(day: date, kind: str, reason: str) -> str:
    if kind not in KINDS:
        raise InvalidOverride(
            fields={"kind": [Text(f"one of {', '.join(KINDS)}", f"须为 {'、'.join(KINDS)} 之一")]},
            problem=Text("the kind is not known", "调整类型不正确"),
        )
    first, last = supported_range()
    # Next year's local holidays may be announced before the package learns that year.
    if not first.year <= day.year <= last.year + 1:
        years = f"{first.year}-{last.year + 1}"
        raise InvalidOverride(
            fields={"date": [Text(f"a date in {years}", f"须为 {first.year} 至 {last.year + 1} 年的日期")]},
            problem=Text(f"{day.isoformat()} is outside {years}", f"{day.isoformat()} 不在 {years} 年内"),
        )
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidOverride(
            fields={"reason": [Text(f"1-{MAX_REASON} characters", f"须为 1 至 {MAX_REASON} 个字")]},
            problem=Text("the reason is empty or too long", "原因为空或过长"),
        )
    return reason


def list_overrides(
    session: Session, *, region: str | None = None, year: int | None = None
) -> list[CalendarOverride]:
    """Overrides, by date then region; filtered to one region's own rows and/or one year."""
    query = select(CalendarOverride).order_by(CalendarOverride.day, CalendarOverride.region)
    if region is not None:
        query = query.where(CalendarOverride.region == normalize_region(region))
    if year is not None:
        if not 1 <= year <= 9998:
            raise InvalidOverride(
                fields={"year": [Text("a four-digit year", "须为四位数的年份")]},
                problem=Text(f"year {year}", f"年份 {year} 不正确"),
            )
        query = query.where(CalendarOverride.day.between(date(year, 1, 1), date(year, 12, 31)))
    return list(session.scalars(query))


def add_override(
    session: Session, *, actor: Actor, region: str, day: date, kind: str, reason: str
) -> CalendarOverride:
    """Add a local holiday or extra working day; one per region and date. Commits."""
    override = write_override(session, actor=actor, region=region, day=day, kind=kind, reason=reason)
    session.commit()
    return override


def write_override(
    session: Session, *, actor: Actor, region: str, day: date, kind: str, reason: str
) -> CalendarOverride:
    """`add_override` without the commit: the caller commits it with what must go with it (the
    job of its follow-ups), holding the calendar's lock exclusively until then."""
    region = normalize_region(region)
    reason = _check_override(day, kind, reason)
    hold(session, exclusive=True)
    exists = select(CalendarOverride.id).where(CalendarOverride.region == region, CalendarOverride.day == day)
    if session.scalar(exists) is not None:
        raise OverrideExists(day=day.isoformat())
    override = CalendarOverride(
        region=region, day=day, kind=kind, reason=reason, created_at=clock.now(), created_by=actor.id
    )
    session.add(override)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent add took the date
        session.rollback()
        raise OverrideExists(day=day.isoformat()) from exc
    record(session, actor, "calendar.override.create", target_type="calendar_override",
           target_id=override.id, details=_audit_details(override))  # fmt: skip
    return override


def delete_override(session: Session, *, actor: Actor, override_id: str) -> tuple[date, str]:
    """Remove an override. Commits. Its date and region (the cases there may move)."""
    where = remove_override(session, actor=actor, override_id=override_id)
    session.commit()
    return where


def remove_override(session: Session, *, actor: Actor, override_id: str) -> tuple[date, str]:
    """`delete_override` without the commit (as `write_override`)."""
    hold(session, exclusive=True)
    override = session.get(CalendarOverride, override_id)
    if override is None:
        raise OverrideNotFound()
    details = _audit_details(override)
    where = (override.day, override.region)
    session.delete(override)
    record(session, actor, "calendar.override.delete", target_type="calendar_override",
           target_id=override_id, details=details)  # fmt: skip
    return where


def _audit_details(override: CalendarOverride) -> dict:
    # Reason text is free input: kept in the table, not copied into the audit trail.
    return {"region": override.region, "date": override.day.isoformat(), "kind": override.kind}
