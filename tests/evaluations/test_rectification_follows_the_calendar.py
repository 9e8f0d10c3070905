"""The citizen's period to confirm or appeal a rectification follows the calendar: a day closed
inside it through the admin override endpoint (a typhoon closure, next year's arrangement entered
late) gives them that working day back: `decide_by` and the reminder day move later, in the
citizen's view and for the sweeper. A day opened inside it (a make-up working day, a closure
withdrawn) never takes a day from what the citizen was told.

The case: a bad rating answered Monday 2026-12-07 (Beijing); five working days: decide_by Monday
12-14, reminded from Friday 12-11."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from core import clock as clock_mod
from core.db import db
from domain.evaluations import rectification
from tests.api.v1.applications.conftest import SS_CARD, key, seeded, zhang  # noqa: F401 - fixtures
from tests.concurrency import Competing
from tests.domain.operators.factories import admin_headers, make_operator
from tests.evaluations.test_concurrency import APPEAL, _bad_rating, _decide, _respond, _task, officers  # noqa: F401
from tests.evaluations.test_rectification_limits import _again, _mine
from tests.evaluations.test_rectification_reminder import _region, _reminders, _sweep
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures
from tests.outbox_jobs import follow_calendar

MONDAY = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
OVERRIDES = "/admin/v1/calendar/overrides"


@pytest.fixture
def clock() -> Iterator[clock_mod.FrozenClock]:
    frozen = clock_mod.FrozenClock(MONDAY)
    previous = clock_mod.use(frozen)
    yield frozen
    clock_mod.use(previous)


def _on(clock: clock_mod.FrozenClock, day: date) -> None:
    clock.advance((datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC) - clock.now()).total_seconds())


def _editor(app: Any, client: Any, name: str) -> dict:
    return admin_headers(client, make_operator(app, username=name, roles=("catalog_editor",)))


def _override(
    app: Any, client: Any, day: str, kind: str = "holiday", region: str = "440100", *, follow: bool = True
) -> str:
    """Enter an override; with `follow`, its follow-ups' job run as a worker runs it just after."""
    body = {
        "date": day,
        "region": region,
        "kind": kind,
        "reason": "台风停工" if kind == "holiday" else "调休",
    }
    made = client.post(OVERRIDES, json=body, headers=_editor(app, client, f"cal-{day}-{region}") | key())
    assert made.status_code == 201, made.get_json()
    if follow:
        assert follow_calendar() == ["succeeded"]
    return made.get_json()["id"]


def _answered(client: Any, zhang: dict, officers: list[dict]) -> tuple[str, str]:  # noqa: F811
    app_id, task_id = _bad_rating(client, zhang)
    assert _region(app_id) == "440100"
    assert _respond(client, officers[0], task_id).status_code == 200
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-14"
    assert _task(app_id).remind_on == date(2026, 12, 11)
    return app_id, task_id


def test_a_day_closed_inside_the_period_gives_the_citizen_a_working_day_more(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _answered(client, zhang, officers)
    _override(app, client, "2026-12-09", follow=False)  # Wednesday: a typhoon closes the offices
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-14"  # the request recounted nothing
    assert follow_calendar() == ["succeeded"]
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-15"
    assert _task(app_id).remind_on == date(2026, 12, 14)

    _on(clock, date(2026, 12, 11))  # the old reminder day: not yet
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    _on(clock, date(2026, 12, 14))  # the old last day: reminded now, with the new date
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 1
    assert [n.params["decide_by"] for n in _reminders(task_id)] == ["2026-12-15"]
    _on(clock, date(2026, 12, 15))  # the day the old period had ended: still theirs
    swept = _sweep(app, monkeypatch)
    assert (swept["rectifications_confirmed_by_default"], _task(app_id).status) == (0, "responded")
    zhang = _again(app, zhang)
    mine = _mine(client, zhang, app_id)
    assert (mine["can_confirm"], mine["can_appeal"]) == (True, True)
    _on(clock, date(2026, 12, 16))
    assert _sweep(app, monkeypatch)["rectifications_confirmed_by_default"] == 1
    assert (_task(app_id).closed_by, _task(app_id).decide_by) == ("deadline", date(2026, 12, 15))


def test_a_day_opened_never_shortens_what_the_citizen_was_told(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """The closure withdrawn, or a Saturday made a working day: the citizen keeps the date they
    were shown (in the app, and in a notice they may read days later); only a closure moves it."""
    app_id, _ = _answered(client, zhang, officers)
    closed = _override(app, client, "2026-12-09")
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-15"
    remover = _editor(app, client, "cal-remover")
    assert client.delete(f"{OVERRIDES}/{closed}", headers=remover | key()).status_code == 204
    assert follow_calendar() == ["succeeded"]
    _override(app, client, "2026-12-12", kind="workday")  # Saturday
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-15"
    _on(clock, date(2026, 12, 15))
    assert _sweep(app, monkeypatch)["rectifications_confirmed_by_default"] == 0
    zhang = _again(app, zhang)
    assert _decide(client, zhang, app_id, {"accept": True}).status_code == 200


def test_a_reminder_already_sent_this_round_is_not_sent_again(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _answered(client, zhang, officers)
    _on(clock, date(2026, 12, 11))
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 1
    _override(app, client, "2026-12-14")  # the last day itself is closed
    zhang = _again(app, zhang)
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-15"
    for day in (date(2026, 12, 14), date(2026, 12, 15)):
        _on(clock, day)
        assert _sweep(app, monkeypatch)["rectifications_reminded"] == 0
    assert len(_reminders(task_id)) == 1
    zhang = _again(app, zhang)  # days later
    assert _decide(client, zhang, app_id, APPEAL).status_code == 200  # the new last day


def test_only_overrides_of_the_case_region_move_it(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
) -> None:
    app_id, _ = _answered(client, zhang, officers)
    _override(app, client, "2026-12-09", region="450000")  # another province's holiday
    _override(app, client, "2026-12-10", region="440106")  # another district of the city
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-14"
    _override(app, client, "2026-12-08", region="000000")  # nationwide
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-15"


def test_a_day_outside_the_period_moves_nothing(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
) -> None:
    app_id, _ = _answered(client, zhang, officers)
    _override(app, client, "2026-12-07")  # the day it was answered is not counted
    _override(app, client, "2026-12-15")  # after the last day
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-14"
    assert _task(app_id).remind_on == date(2026, 12, 11)


def _entered_and_followed(app: Any, body: dict, editor: dict) -> Callable[[Any], tuple[int, list[str]]]:
    """The operator enters `body`, then a worker runs its follow-ups' job at once (in the same
    thread, as soon as the 201 is out): a competing transaction still open is not waited for."""

    def run(c: Any) -> tuple[int, list[str]]:
        answer = c.post(OVERRIDES, json=body, headers=editor | key())
        with app.app_context():
            return answer.status_code, follow_calendar()

    return run


def test_a_response_counted_while_a_closure_is_entered_is_followed(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """The department answers while an operator enters a closure, and a worker runs the
    closure's job just after its 201: the response has counted its period and not committed yet.
    Without the calendar's lock the closure commits at once and its job does not see the period
    (the task not responded in its snapshot): the period keeps the day the closure took. Counting
    holds the calendar (`rectification.respond`), so the closure waits for the response and its
    job then moves it (PostgreSQL)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the closure waits for the response anyway")
    app_id, task_id = _bad_rating(client, zhang)
    editor = _editor(app, client, "cal-meanwhile")
    body = {"date": "2026-12-09", "region": "440100", "kind": "holiday", "reason": "台风停工"}
    real, other = rectification.remind_day, []

    def counted(*args: Any) -> Any:  # the period is counted; the response not yet committed
        if threading.current_thread() is threading.main_thread() and not other:
            other.append(Competing(app, _entered_and_followed(app, body, editor)))
        return real(*args)

    monkeypatch.setattr(rectification, "remind_day", counted)
    assert _respond(client, officers[0], task_id).status_code == 200
    assert other[0].result() == (201, ["succeeded"])
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-15"
    assert _task(app_id).remind_on == date(2026, 12, 14)


def test_a_period_the_sweeper_gives_while_a_closure_is_entered_is_followed(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """A response from before periods were kept gets one from the sweeper while an operator
    enters a closure, and a worker runs the closure's job just after its 201. Without the
    calendar's lock the job does not see the period (none yet in its snapshot) and it keeps the
    closed day. The sweeper counts it under the lock, so the closure waits and its job then sees
    the period (PostgreSQL)."""
    from domain.evaluations import rectification_sweep
    from domain.evaluations.models import RectificationTask

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the closure waits for the sweeper anyway")
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    session = db.session()
    task = session.get(RectificationTask, task_id)
    task.decide_by = task.remind_on = task.decide_from = task.decide_days = None
    session.commit()
    editor = _editor(app, client, "cal-sweeper")
    body = {"date": "2026-12-09", "region": "440100", "kind": "holiday", "reason": "台风停工"}
    real, calls, other = rectification_sweep.remind_day, [], []

    def counted(*args: Any) -> Any:  # the second count: the period about to be written
        if threading.current_thread() is threading.main_thread():
            calls.append(1)
            if len(calls) == 2:
                other.append(Competing(app, _entered_and_followed(app, body, editor)))
        return real(*args)

    monkeypatch.setattr(rectification_sweep, "remind_day", counted)
    rectification_sweep.close_undecided(db.session(), clock.now())
    assert other[0].result() == (201, ["succeeded"])
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-15"


def test_one_task_that_cannot_be_recounted_leaves_the_others_followed_and_the_override_answered(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
) -> None:
    # The override is committed before its follow-ups: a task that cannot be recounted (its
    # case's pinned item version unreadable) is skipped and logged, not an error answered for
    # an override that is in force, with the other tasks' periods left on the old calendar. Nor
    # does it fail the follow-ups' job: a retry could only fail on it again, the others done.
    from sqlalchemy import select as _select

    from domain.applications.models import Application
    from domain.calendar.models import CalendarOverride

    first_app, first = _bad_rating(client, zhang)
    second_app, second = _bad_rating(client, zhang)
    for t in (first, second):
        assert _respond(client, officers[0], t).status_code == 200
    broken_app = first_app if first < second else second_app  # recounted first
    good_app = second_app if broken_app == first_app else first_app
    session = db.session()
    row = session.get(Application, broken_app)
    row.items = [dict(row.items[0], version=999)]  # a pinned version the catalog no longer has
    session.commit()

    body = {"date": "2026-12-09", "region": "440100", "kind": "holiday", "reason": "台风停工"}
    answer = client.post(OVERRIDES, json=body, headers=_editor(app, client, "cal-x") | key())
    assert answer.status_code == 201, answer.get_json()
    stored = db.session().scalar(_select(CalendarOverride).where(CalendarOverride.day == date(2026, 12, 9)))
    db.session().rollback()
    assert stored is not None
    assert follow_calendar() == ["succeeded"]
    assert _task(good_app).decide_by == date(2026, 12, 15)


def test_a_database_error_on_one_task_makes_the_job_retry_rather_than_skip_it(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    # A lock timeout, SQLite's "database is locked", a lost connection: transient, not a task
    # that cannot be recounted. Skipping it would leave the citizen's period on the old calendar
    # with the job succeeded; it fails the step instead, and a retry recounts the task.
    from sqlalchemy.exc import OperationalError

    from domain.evaluations import rectification_calendar
    from tests.outbox_jobs import CALENDAR_FOLLOW, jobs_named

    app_id, _ = _answered(client, zhang, officers)
    real = rectification_calendar._recount

    def locked(*args: Any) -> Any:
        raise OperationalError("UPDATE rectification_tasks", {}, Exception("lock timeout"))

    monkeypatch.setattr(rectification_calendar, "_recount", locked)
    _override(app, client, "2026-12-09", follow=False)
    assert follow_calendar() == ["retrying"]
    assert _mine(client, zhang, app_id)["decide_by"] == "2026-12-14"

    monkeypatch.setattr(rectification_calendar, "_recount", real)
    [job] = jobs_named(CALENDAR_FOLLOW)
    clock.advance((job.next_attempt_at - clock.now()).total_seconds() + 1)
    assert follow_calendar() == ["succeeded"]
    assert _mine(client, _again(app, zhang), app_id)["decide_by"] == "2026-12-15"
