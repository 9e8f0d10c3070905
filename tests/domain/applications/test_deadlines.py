"""Due dates move back by the pauses in the limit's own unit: working days for a limit in working
days, calendar days for one in natural days or months."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.applications import states
from domain.applications.deadlines import on_transition
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
