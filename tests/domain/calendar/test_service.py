"""Due dates across National Day 2025 and Spring Festival 2026, overrides and the data range."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, select

from core.audit import AuditEvent
from domain.calendar import service as cal
from domain.calendar.errors import (
    CalendarOutOfRange,
    InvalidOverride,
    InvalidRegion,
    InvalidTimeLimit,
    OverrideExists,
    OverrideNotFound,
)
from tests.domain.operators.factories import TEST_ACTOR

GZ = "440100"  # Guangzhou
D = date


def _add(session: Any, day: date, kind: str, region: str = GZ, reason: str = "测试") -> Any:
    return cal.add_override(session, actor=TEST_ACTOR, region=region, day=day, kind=kind, reason=reason)


@contextmanager
def _statements(session: Any):
    seen: list[str] = []

    def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", _count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", _count)


# --- National Day 2025: Oct 1-8 off, Sun Sep 28 and Sat Oct 11 are working days -------------


def test_national_day_2025_statutory_days(db_session):
    assert cal.is_working_day(db_session, D(2025, 9, 28), region=GZ)  # adjusted working Sunday
    assert cal.is_working_day(db_session, D(2025, 10, 11), region=GZ)  # adjusted working Saturday
    assert not cal.is_working_day(db_session, D(2025, 10, 12), region=GZ)  # an ordinary Sunday
    for day in range(1, 9):
        assert not cal.is_working_day(db_session, D(2025, 10, day), region=GZ), day
    assert cal.is_working_day(db_session, D(2025, 10, 9), region=GZ)


def test_due_date_across_national_day_counts_the_adjusted_days(db_session):
    # Thu Sep 25 +1 = Fri 26; +2 = Sun 28 (adjusted); +3 Mon 29; +4 Tue 30; +5 Thu Oct 9.
    assert cal.add_working_days(db_session, D(2025, 9, 25), 2, region=GZ) == D(2025, 9, 28)
    assert cal.add_working_days(db_session, D(2025, 9, 25), 5, region=GZ) == D(2025, 10, 9)
    # ... Fri Oct 10, then the adjusted Saturday Oct 11, then Mon Oct 13.
    assert cal.add_working_days(db_session, D(2025, 9, 25), 7, region=GZ) == D(2025, 10, 11)
    assert cal.add_working_days(db_session, D(2025, 9, 25), 8, region=GZ) == D(2025, 10, 13)
    result = cal.due_date(db_session, D(2025, 9, 29), 3, region=GZ)
    assert result.due == D(2025, 10, 10)
    assert result.skipped == [D(2025, 10, d) for d in range(1, 9)]


def test_start_on_a_friday_skips_the_weekend(db_session):
    assert cal.add_working_days(db_session, D(2025, 11, 7), 1, region=GZ) == D(2025, 11, 10)
    assert cal.add_working_days(db_session, D(2025, 11, 7), 5, region=GZ) == D(2025, 11, 14)


def test_start_inside_a_holiday_counts_from_the_first_working_day_after(db_session):
    assert cal.add_working_days(db_session, D(2025, 10, 3), 1, region=GZ) == D(2025, 10, 9)
    assert cal.add_working_days(db_session, D(2025, 10, 3), 3, region=GZ) == D(2025, 10, 11)


def test_zero_working_days_is_the_start_day(db_session):
    assert cal.add_working_days(db_session, D(2025, 10, 3), 0, region=GZ) == D(2025, 10, 3)
    assert cal.due_date(db_session, D(2025, 10, 3), 0, "natural_day", region=GZ).due == D(2025, 10, 3)


def test_working_days_between_inverts_add_working_days(db_session):
    assert cal.working_days_between(db_session, D(2025, 9, 25), D(2025, 10, 13), region=GZ) == 8
    assert cal.working_days_between(db_session, D(2025, 10, 13), D(2025, 9, 25), region=GZ) == -8
    assert cal.working_days_between(db_session, D(2025, 10, 1), D(2025, 10, 8), region=GZ) == 0


# --- Spring Festival 2026: Feb 15-23 off, Sat Feb 14 and Sat Feb 28 are working days ---------


def test_spring_festival_2026_statutory_days(db_session):
    assert cal.is_working_day(db_session, D(2026, 2, 14), region=GZ)  # adjusted Saturday (before)
    assert cal.is_working_day(db_session, D(2026, 2, 28), region=GZ)  # adjusted Saturday (after)
    for day in range(15, 24):
        assert not cal.is_working_day(db_session, D(2026, 2, day), region=GZ), day
    assert cal.is_working_day(db_session, D(2026, 2, 24), region=GZ)


def test_due_date_across_spring_festival(db_session):
    # Thu Feb 12 +1 Fri 13, +2 Sat 14 (adjusted), then nine days off, +3 Tue Feb 24.
    result = cal.due_date(db_session, D(2026, 2, 12), 3, region=GZ)
    assert result.due == D(2026, 2, 24)
    assert result.skipped == [D(2026, 2, d) for d in range(15, 24)]
    # 20 working days from Feb 12: Feb 13, 14, 24-27 (6), Sat 28 (7), Mar 2-6 (12),
    # Mar 9-13 (17), Mar 16-18 (20).
    assert cal.add_working_days(db_session, D(2026, 2, 12), 20, region=GZ) == D(2026, 3, 18)
    assert cal.working_days_between(db_session, D(2026, 2, 12), D(2026, 3, 18), region=GZ) == 20


def test_natural_days_ending_in_a_holiday_roll_to_the_next_working_day(db_session):
    result = cal.due_date(db_session, D(2026, 2, 5), 10, "natural_day", region=GZ)
    assert result.due == D(2026, 2, 24)
    assert result.skipped == [D(2026, 2, d) for d in range(15, 24)]
    plain = cal.due_date(db_session, D(2026, 2, 5), 10, "natural_day", region=GZ, roll_to_working_day=False)
    assert plain.due == D(2026, 2, 15) and plain.skipped == []


def test_months_clamp_to_the_month_end(db_session):
    assert cal.due_date(db_session, D(2025, 1, 31), 1, "month", region=GZ).due == D(2025, 2, 28)
    assert cal.due_date(db_session, D(2025, 8, 31), 1, "month", region=GZ).due == D(2025, 9, 30)
    # Sep 8 + 1 month = Wed Oct 8, inside National Day: ends Thu Oct 9.
    assert cal.due_date(db_session, D(2025, 9, 8), 1, "month", region=GZ).due == D(2025, 10, 9)


# --- Local overrides ----------------------------------------------------------------------------


def test_local_holiday_shifts_a_due_date(db_session):
    assert cal.add_working_days(db_session, D(2025, 11, 3), 3, region=GZ) == D(2025, 11, 6)
    _add(db_session, D(2025, 11, 5), "holiday")
    assert cal.add_working_days(db_session, D(2025, 11, 3), 3, region=GZ) == D(2025, 11, 7)
    assert cal.due_date(db_session, D(2025, 11, 3), 3, region=GZ).skipped == [D(2025, 11, 5)]
    # Another city is not affected.
    assert cal.add_working_days(db_session, D(2025, 11, 3), 3, region="310100") == D(2025, 11, 6)


def test_local_workday_counts(db_session):
    _add(db_session, D(2025, 11, 8), "workday")  # a Saturday
    assert cal.is_working_day(db_session, D(2025, 11, 8), region=GZ)
    assert cal.add_working_days(db_session, D(2025, 11, 7), 1, region=GZ) == D(2025, 11, 8)
    assert cal.add_working_days(db_session, D(2025, 11, 7), 1, region="310100") == D(2025, 11, 10)


def test_region_override_wins_over_nationwide_and_nationwide_applies_everywhere(db_session):
    _add(db_session, D(2025, 11, 5), "holiday", region="000000")
    assert not cal.is_working_day(db_session, D(2025, 11, 5), region="310100")
    _add(db_session, D(2025, 11, 5), "workday", region=GZ)
    assert cal.is_working_day(db_session, D(2025, 11, 5), region=GZ)
    assert not cal.is_working_day(db_session, D(2025, 11, 5), region="310100")


def test_a_district_inherits_its_province_overrides_unless_it_has_its_own(db_session):
    _add(db_session, D(2025, 3, 31), "holiday", region="450000", reason="壮族三月三")
    assert not cal.is_working_day(db_session, D(2025, 3, 31), region="450102")  # Nanning district
    _add(db_session, D(2025, 3, 31), "workday", region="450102")
    assert cal.is_working_day(db_session, D(2025, 3, 31), region="450102")
    assert not cal.is_working_day(db_session, D(2025, 3, 31), region="450100")


def test_one_query_per_computation(db_session):
    for day in (5, 12, 19):
        _add(db_session, D(2025, 11, day), "holiday")
    _add(db_session, D(2025, 11, 22), "workday", region="000000")
    db_session.commit()
    with _statements(db_session) as seen:
        assert cal.add_working_days(db_session, D(2025, 9, 25), 60, region=GZ) == D(2025, 12, 26)
    assert len(seen) == 1, seen
    with _statements(db_session) as seen:
        cal.working_days_between(db_session, D(2025, 1, 1), D(2025, 12, 31), region=GZ)
    assert len(seen) == 1, seen
    with _statements(db_session) as seen:
        cal.due_date(db_session, D(2025, 10, 1), 2, "month", region=GZ)
    assert len(seen) == 1, seen


# --- The data range -----------------------------------------------------------------------------


def test_the_year_after_the_known_data_is_provisional_and_the_one_after_is_refused(db_session):
    first, last = cal.supported_range()
    assert last == D(2026, 12, 31) and first == D(2004, 1, 1)
    # A case accepted in late December gets a January due date: weekends and New Year's Day off.
    due = cal.due_date(db_session, D(2026, 12, 28), 4, region=GZ)
    assert due.due == D(2027, 1, 4) and due.provisional
    assert D(2027, 1, 1) in due.skipped and D(2027, 1, 2) in due.skipped
    assert not cal.due_date(db_session, D(2026, 12, 28), 3, region=GZ).provisional
    # The State Council's arrangement, entered nationwide by operators, is followed.
    _add(db_session, D(2027, 1, 4), "holiday", region="000000")
    assert cal.add_working_days(db_session, D(2026, 12, 28), 4, region=GZ) == D(2027, 1, 5)
    assert cal.is_working_day(db_session, D(2027, 3, 1), region=GZ)
    with pytest.raises(CalendarOutOfRange) as err:
        cal.is_working_day(db_session, D(2028, 1, 3), region=GZ)
    assert err.value.details["last_supported"] == "2027-12-31"
    with pytest.raises(CalendarOutOfRange):
        cal.due_date(db_session, D(2027, 12, 1), 1, "month", region=GZ)


# --- Validation and CRUD ------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["4401", "44010a", "990100", "", "4401000"])
def test_invalid_regions_are_refused(db_session, region):
    with pytest.raises(InvalidRegion):
        cal.add_working_days(db_session, D(2025, 11, 3), 1, region=region)


@pytest.mark.parametrize(
    ("value", "unit"), [(-1, "working_day"), (5, "hour"), (1001, "working_day"), (True, "month")]
)
def test_invalid_time_limits_are_refused(db_session, value, unit):
    with pytest.raises(InvalidTimeLimit):
        cal.due_date(db_session, D(2025, 11, 3), value, unit, region=GZ)


def test_override_crud_validates_and_audits(db_session):
    created = _add(db_session, D(2025, 11, 5), "holiday", reason="  城市纪念日 ")
    assert created.reason == "城市纪念日" and created.created_by == "tests"
    with pytest.raises(OverrideExists):
        _add(db_session, D(2025, 11, 5), "workday")
    with pytest.raises(InvalidOverride):
        _add(db_session, D(2025, 11, 6), "half_day")
    with pytest.raises(InvalidOverride):
        _add(db_session, D(2025, 11, 6), "holiday", reason=" ")
    with pytest.raises(InvalidOverride):
        _add(db_session, D(2099, 11, 6), "holiday")
    _add(db_session, D(2027, 1, 4), "holiday")  # next year's local days may be entered early
    assert [o.day for o in cal.list_overrides(db_session, region=GZ, year=2025)] == [D(2025, 11, 5)]
    assert len(cal.list_overrides(db_session)) == 2
    cal.delete_override(db_session, actor=TEST_ACTOR, override_id=created.id)
    with pytest.raises(OverrideNotFound):
        cal.delete_override(db_session, actor=TEST_ACTOR, override_id=created.id)
    actions = db_session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_id == created.id).order_by(AuditEvent.at)
    ).all()
    assert sorted(actions) == ["calendar.override.create", "calendar.override.delete"]


@pytest.mark.parametrize("region", ["44０１００", "44٠١٠٠"])
def test_a_region_is_six_ascii_digits(region):
    """An adjustment saved under a region written in full-width digits would match no item or
    hall: it must be refused, not stored and silently never applied."""
    with pytest.raises(InvalidRegion):
        cal.normalize_region(region)


def test_public_holidays_are_told_apart_from_ordinary_weekends(db_session) -> None:
    from domain.calendar.service import is_public_holiday

    assert is_public_holiday(db_session, date(2026, 10, 3), region="440106")  # a Saturday in National Day
    assert is_public_holiday(db_session, date(2026, 10, 1), region="440106")
    assert not is_public_holiday(db_session, date(2026, 12, 12), region="440106")  # an ordinary Saturday
    assert not is_public_holiday(db_session, date(2026, 12, 14), region="440106")  # a working Monday
