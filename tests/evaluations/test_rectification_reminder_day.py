"""The citizen's reminder before a rectification is confirmed by default, at scale: the day is
kept on the task (`remind_on`), so a pass reads only the tasks it reminds (a task due its
reminder is reached however many others await a decision, and a pass costs the same whatever
their number); a response from before the day was kept gets it counted once; an existing notice
or a gone case does not stop the sweeper."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import event, update

from core.db import db
from domain.applications.deadlines import local_date
from domain.calendar import service as calendar
from domain.evaluations import rectification_sweep
from domain.evaluations.models import RectificationTask
from tests.api.v1.applications.conftest import SS_CARD, seeded, zhang  # noqa: F401 - fixtures
from tests.evaluations.test_concurrency import APPEAL, _bad_rating, _decide, _task, officers  # noqa: F401
from tests.evaluations.test_rectification_reminder import (
    _region,
    _reminders,
    _respond,
    _sweep,
    _until,
)
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures


def _renamed(task_id: str, new_id: str) -> str:
    """The task under another id (ids are random: the test chooses the order they are read in)."""
    session = db.session()
    session.execute(update(RectificationTask).where(RectificationTask.id == task_id).values(id=new_id))
    session.commit()
    return new_id


def _remind_day(app_id: str) -> date:
    task = _task(app_id)
    session = db.session()
    day = calendar.add_working_days(session, local_date(task.responded_at), 4, region=_region(app_id))
    session.rollback()
    return day


def test_a_task_due_its_reminder_is_reached_whatever_awaits_before_it(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """Tasks whose reminder day has not come are not read at all: with room for one task a
    pass, the one due today is reminded, not crowded out by the earlier ids."""
    due_app, due_task = _bad_rating(client, zhang)
    waiting = [_bad_rating(client, zhang) for _ in range(3)]
    _respond(due_task)
    _until(clock, _remind_day(due_app))  # its reminder day: the working day before decide_by
    for _, task_id in waiting:
        _respond(task_id)  # answered today: their reminder days are days away
    for i, (_, task_id) in enumerate(waiting):
        _renamed(task_id, f"00000000-0000-4000-8000-00000000000{i}")
    due_task = _renamed(due_task, "ffffffff-ffff-4fff-bfff-ffffffffffff")
    monkeypatch.setattr(rectification_sweep, "BATCH", 1)
    monkeypatch.setattr(rectification_sweep, "MAX_BATCHES", 1)

    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 1
    assert len(_reminders(due_task)) == 1
    assert all(_reminders(task_id) == [] for _, task_id in waiting)


def test_a_pass_costs_the_same_whatever_the_number_of_tasks_not_yet_due(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
) -> None:
    """Every 600 s the pass reads what it reminds, not each awaiting task's calendar."""

    def statements() -> int:
        count = [0]

        def counted(*_args: Any) -> None:
            count[0] += 1

        engine = db.session().get_bind()
        event.listen(engine, "before_cursor_execute", counted)
        try:
            assert rectification_sweep.remind_undecided(db.session(), clock.now()) == 0
        finally:
            event.remove(engine, "before_cursor_execute", counted)
        return count[0]

    tasks = [_bad_rating(client, zhang) for _ in range(4)]
    _respond(tasks[0][1])
    one = statements()
    for _, task_id in tasks[1:]:
        _respond(task_id)
    assert statements() == one


def test_a_response_from_before_the_reminder_day_was_kept_is_reminded_on_its_day(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """A response given before deployment has `decide_by` but no reminder day: the sweeper
    counts it once, and reminds on it."""
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    kept = _task(app_id).remind_on
    session = db.session()
    session.execute(update(RectificationTask).where(RectificationTask.id == task_id).values(remind_on=None))
    session.commit()
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert _task(app_id).remind_on == kept == _remind_day(app_id)
    _until(clock, kept)
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 1


def test_a_reminder_already_on_file_is_taken_as_sent_not_a_failure_each_pass(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
    caplog: Any,
) -> None:
    """After a migration's downgrade and upgrade the round reminded is forgotten, the notice not."""
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    _until(clock, _task(app_id).decide_by)
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 1
    session = db.session()
    session.execute(
        update(RectificationTask).where(RectificationTask.id == task_id).values(decide_reminded_round=None)
    )
    session.commit()
    with caplog.at_level(logging.ERROR, logger="yiwang.evaluations"):
        assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert not [r for r in caplog.records if r.name == "yiwang.evaluations"]
    assert _task(app_id).decide_reminded_round == 1
    assert len(_reminders(task_id)) == 1


def test_a_task_whose_case_is_gone_is_marked_not_counted(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    _until(clock, _task(app_id).decide_by)
    monkeypatch.setattr(rectification_sweep, "application_of", lambda *_: None)
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert _task(app_id).decide_reminded_round == 1  # not read again each pass
    assert _reminders(task_id) == []
