"""Due dates move back by the pauses in the limit's own unit: working days for a limit in working
days, calendar days for one in natural days or months."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.applications import states
from domain.applications.deadlines import on_transition, paused_working_days, pauses
from domain.applications.models import Application

BEIJING_NOON = 4  # 12:00 in Beijing, as UTC hours


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, BEIJING_NOON, tzinfo=UTC)


def _walk(db_session, limit: dict, moves: list[tuple[str, date]]) -> Application:
    app = Application(status=states.RECEIVED, paused_working_days=0, paused_days=0)
    for target, day in moves:
        on_transition(db_session, app, target, _at(day), limits=(limit,), region="440100")
        app.status = target
    return app


@pytest.mark.parametrize(
    ("limit", "due"),
    [
        # 30 natural days from Monday 12-07 end on 2027-01-06; paused Friday to Monday (3 calendar
        # days): 01-09, a Saturday, so the next working day.
        ({"value": 30, "unit": "natural_day"}, date(2027, 1, 11)),
        # 10 working days end on Monday 12-21; paused one working day (Friday): 12-22.
        ({"value": 10, "unit": "working_day"}, date(2026, 12, 22)),
    ],
)
def test_a_weekend_supplement_moves_the_due_date_in_the_limits_unit(db_session, limit, due):
    app = _walk(db_session, limit, [
        (states.ACCEPTED, date(2026, 12, 7)),
        (states.SUPPLEMENT_REQUESTED, date(2026, 12, 11)),
        (states.RESUBMITTED, date(2026, 12, 14)),
    ])  # fmt: skip
    assert (app.paused_days, app.paused_working_days) == (3, 1)
    assert app.due_on == due


def test_the_timeline_gives_back_the_pauses_the_clock_counted(db_session):
    """A supplement asked before acceptance stops no clock; a special procedure and a later
    supplement do; a pause still running is not counted yet. Recounted on the same calendar,
    the timeline's pauses give the working days the clock counted as it went."""
    moves = [
        (states.SUPPLEMENT_REQUESTED, date(2026, 12, 1)),  # before acceptance
        (states.RESUBMITTED, date(2026, 12, 3)),
        (states.ACCEPTED, date(2026, 12, 7)),
        (states.IN_REVIEW, date(2026, 12, 8)),
        (states.SPECIAL_PROCEDURE, date(2026, 12, 9)),
        (states.IN_REVIEW, date(2026, 12, 11)),
        (states.SUPPLEMENT_REQUESTED, date(2026, 12, 14)),
        (states.RESUBMITTED, date(2026, 12, 21)),
        (states.SUPPLEMENT_REQUESTED, date(2026, 12, 22)),  # still waiting
    ]
    app = _walk(db_session, {"value": 10, "unit": "working_day"}, moves)
    spans = pauses((target, _at(day)) for target, day in moves)
    assert spans == [(date(2026, 12, 9), date(2026, 12, 11)), (date(2026, 12, 14), date(2026, 12, 21))]
    assert paused_working_days(db_session, spans, region="440100") == app.paused_working_days == 7
    assert app.paused_on == date(2026, 12, 22)
