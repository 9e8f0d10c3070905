"""The citizen is reminded before their silence confirms a rectification: from the working day
(`RECTIFY_REMIND_WORKING_DAYS_BEFORE`, by the case's region calendar) before `decide_by`, once a
response round, never after they decided, and not once the period is over (the confirmation by
default is told instead)."""

from __future__ import annotations

import logging
import threading
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from core.db import db
from domain.applications.deadlines import local_date
from domain.applications.models import Application, ApplicationNotice
from domain.applications.service import spec_of
from domain.calendar import service as calendar
from domain.calendar.models import KIND_HOLIDAY, CalendarOverride
from domain.evaluations import rectification, rectification_sweep
from tests.api.v1.applications.conftest import SS_CARD, seeded, zhang  # noqa: F401 - fixtures
from tests.concurrency import Competing
from tests.evaluations.test_concurrency import APPEAL, _bad_rating, _decide, _task, officers  # noqa: F401
from tests.evaluations.test_rectification_deadline import _told
from tests.evaluations.test_rectification_limits import _again
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures
from tests.notifications.conftest import run_notifier
from workers import sweeper

REMINDER = "rectification_decide_reminder"


def _region(app_id: str) -> str:
    session = db.session()
    region = spec_of(session, session.get(Application, app_id)).region
    session.rollback()
    return region


def _working(day: date, region: str) -> bool:
    session = db.session()
    working = calendar.is_working_day(session, day, region=region)
    session.rollback()
    return working


def _respond(task_id: str, text: str = "已整改") -> None:
    """The department answers (days into the test the officer's session has expired)."""
    rectification.respond(db.session(), task_id=task_id, response=text, operator_id="rectify-op")


def _sweep(app: Any, monkeypatch: Any) -> dict:
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        return sweeper.run_once(0)


def _reminders(task_id: str) -> list[ApplicationNotice]:
    session = db.session()
    rows = list(
        session.scalars(
            select(ApplicationNotice).where(
                ApplicationNotice.event_type == REMINDER, ApplicationNotice.dedupe_key.contains(task_id)
            )
        )
    )
    session.rollback()
    return rows


def _until(clock: Any, day: date) -> None:
    while local_date(clock.now()) < day:
        clock.advance(days=1)


def test_the_reminder_comes_on_the_working_day_before_the_last_and_once(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    region = _region(app_id)
    # Respond on a day whose period ends just after days off (a weekend): the day before the
    # last calendar day is then not the day to remind on.
    for _ in range(14):
        ends = calendar.add_working_days(db.session(), local_date(clock.now()), 5, region=region)
        if not _working(ends - timedelta(days=1), region):
            break
        clock.advance(days=1)
    responded_on = local_date(clock.now())
    _respond(task_id)
    decide_by = _task(app_id).decide_by
    eve = decide_by - timedelta(days=1)
    assert not _working(eve, region)
    while not _working(eve, region):
        eve -= timedelta(days=1)
    # The day is kept with the period: a holiday written straight into the table (not through
    # the admin endpoint, whose follow-up would recount both: test_rectification_follows_the_
    # calendar.py) is not read again each pass, and the reminder still comes before the last day.
    session = db.session()
    session.add(CalendarOverride(region=region, day=eve, kind=KIND_HOLIDAY, reason="地方节日",
                                 created_at=clock.now(), created_by="test"))  # fmt: skip
    session.commit()
    remind_on = eve
    assert responded_on < remind_on and _task(app_id).remind_on == remind_on

    sent_on: list[date] = []
    while local_date(clock.now()) <= decide_by:
        for _ in range(2):  # two passes a day
            if _sweep(app, monkeypatch)["rectifications_reminded"]:
                sent_on.append(local_date(clock.now()))
        clock.advance(days=1)
    assert sent_on == [remind_on]
    assert len(_reminders(task_id)) == 1
    assert _task(app_id).status == "responded"  # a reminder decides nothing

    run_notifier(app)
    zhang = _again(app, zhang)
    told = _told(client, zhang, REMINDER)
    assert len(told) == 1, told
    assert f"将于 {decide_by.isoformat()}（含当日）截止" in told[0] and "视为确认" in told[0], told
    english = _told(client, zhang, REMINDER, "en")
    assert len(english) == 1 and f"ends on {decide_by.isoformat()} (inclusive)" in english[0], english


def test_no_reminder_once_the_citizen_decided_and_a_new_round_gets_its_own(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    first_by = _task(app_id).decide_by
    assert _decide(client, zhang, app_id, APPEAL).status_code == 200  # appealed at once
    _until(clock, first_by)  # round 1's reminder day and last day pass: nothing awaits the citizen
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert _reminders(task_id) == []

    _respond(task_id, "复核后已再次整改")  # round 2, its own period
    task = _task(app_id)
    assert (task.rounds, task.status) == (2, "responded") and task.decide_by > first_by
    _until(clock, task.decide_by)  # its last day: past its reminder day, the period still open
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 1
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert [n.dedupe_key.split(":")[-2] for n in _reminders(task_id)] == ["2"]

    zhang = _again(app, zhang)
    assert _decide(client, zhang, app_id, {"accept": True}).status_code == 200
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert len(_reminders(task_id)) == 1


def test_a_confirmed_task_is_not_reminded(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    assert _decide(client, zhang, app_id, {"accept": True}).status_code == 200
    _until(clock, _task(app_id).decide_by)
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert _reminders(task_id) == []


def test_past_the_period_only_the_confirmation_by_default_is_told(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """The sweeper was away through the reminder day and the last day: the citizen is not asked
    to decide what is already decided; they hear it was confirmed by default."""
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    _until(clock, _task(app_id).decide_by + timedelta(days=1))
    done = _sweep(app, monkeypatch)
    assert (done["rectifications_reminded"], done["rectifications_confirmed_by_default"]) == (0, 1)
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert _reminders(task_id) == []
    session = db.session()
    by_default = session.scalar(
        select(func.count()).where(ApplicationNotice.event_type == "rectification_deemed_confirmed")
    )
    session.rollback()
    assert by_default == 1


def test_two_sweepers_at_once_remind_once(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
    caplog: Any,
) -> None:
    """Several sweepers may run: while one is writing a task's reminder, another pass reaches the
    same task; it waits for the first, then finds the round reminded (no second notice, and no
    failure to log)."""
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    _until(clock, _task(app_id).decide_by)
    now = clock.now()
    real, other = rectification_sweep._tell_decide_soon, []

    def second_pass(_client: Any) -> int:
        with app.app_context():
            return rectification_sweep.remind_undecided(db.session(), now)

    def paused(*args: Any) -> Any:
        if threading.current_thread() is threading.main_thread() and not other:
            other.append(Competing(app, second_pass))
        return real(*args)

    monkeypatch.setattr(rectification_sweep, "_tell_decide_soon", paused)
    with caplog.at_level(logging.ERROR, logger="yiwang.evaluations"):
        first = rectification_sweep.remind_undecided(db.session(), now)
        second = other[0].result()
    assert other[0].waited, "the second pass went through while the first held the task"
    assert (first, second) == (1, 0)
    assert len(_reminders(task_id)) == 1
    assert not [r for r in caplog.records if r.name == "yiwang.evaluations"]
