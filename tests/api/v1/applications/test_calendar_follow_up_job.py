"""A calendar override's follow-ups run as one outbox job (`calendar.follow`) written in the
override's own transaction: the operator is answered at once, and the job moves the cases' due
dates, closes or reopens the halls' slots and recounts the rectifications. A step that fails makes
the job retry (then dead, for an operator to replay), and running the steps again is harmless.
The halls' slots of the day are closed (or opened) by the override's transaction too: no booking
lands on a closed day while the job waits.

The case: an SS card (10 working days promised) accepted Monday 2026-12-07, due 12-21; a typhoon
closes Thursday 12-10 in Guangzhou: due 12-22."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from core import clock as clock_mod
from core.db import db
from core.outbox import service as outbox_service
from core.outbox.models import DEAD, PENDING, RETRYING, SUCCEEDED
from domain.applications import calendar_changes
from domain.appointments import closures
from domain.appointments.models import AppointmentSlot
from domain.calendar.models import CalendarOverride
from tests.api.v1.applications.conftest import key, relogin
from tests.api.v1.applications.test_due_dates_follow_the_calendar import _accepted, _due
from tests.appointments.conftest import book, make_hall, slots
from tests.domain.operators.factories import admin_headers, make_operator
from tests.outbox_jobs import CALENDAR_FOLLOW, follow_calendar, jobs_named
from workers.jobs import execute_outbox_job

MONDAY = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
OVERRIDES = "/admin/v1/calendar/overrides"
DAY = date(2026, 12, 10)
CLOSURE = {"date": DAY.isoformat(), "region": "440100", "kind": "holiday", "reason": "台风停工"}


@pytest.fixture(autouse=True)
def monday() -> Iterator[clock_mod.FrozenClock]:
    frozen = clock_mod.FrozenClock(MONDAY)
    previous = clock_mod.use(frozen)
    yield frozen
    clock_mod.use(previous)


def _editor(app: Any, client: Any, username: str = "cal-editor") -> dict:
    return admin_headers(client, make_operator(app, username=username, roles=("catalog_editor",)))


def _close(client: Any, editor: dict, **body: Any) -> Any:
    return client.post(OVERRIDES, json=CLOSURE | body, headers=editor | key())


def _slots_closed(hall_id: str) -> set[bool]:
    session, S = db.session(), AppointmentSlot
    closed = set(session.scalars(select(S.closed).where(S.hall_id == hall_id, S.day == DAY)))
    session.rollback()
    return closed


def _held_slot(app: Any, client: Any, who: dict) -> tuple[str, str]:
    """A hall in Tianhe (under Guangzhou) and the id of a slot of DAY a phone has listed."""
    hall = make_hall(app)
    listed = slots(client, who, hall, DAY)
    assert listed.status_code == 200, listed.get_json()
    return hall, listed.get_json()[0]["id"]


def _days(app: Any) -> dict[str, int]:
    return {
        "decide_days": app.config["RECTIFY_DECIDE_WORKING_DAYS"],
        "remind_days": app.config["RECTIFY_REMIND_WORKING_DAYS_BEFORE"],
        "working_days": app.config["RECTIFY_WORKING_DAYS"],
    }


def _wait_for_retry(clock: clock_mod.FrozenClock) -> None:
    [job] = jobs_named(CALENDAR_FOLLOW)
    clock.advance((job.next_attempt_at - clock.now()).total_seconds() + 1)


def test_the_override_is_answered_before_the_recount_and_its_one_job_moves_the_due_date(
    app: Any, client: Any, zhang: dict
) -> None:
    case = _accepted(client, zhang)
    hall, slot = _held_slot(app, client, zhang)
    editor = _editor(app, client)

    made = _close(client, editor)
    assert made.status_code == 201, made.get_json()
    [job] = jobs_named(CALENDAR_FOLLOW)
    assert job.status == PENDING
    assert job.payload == {"day": "2026-12-10", "region": "440100"} | _days(app)
    # The request recounted no case: the due date waits for the job. The day's slots are shut
    # from the answer on.
    assert _due(client, zhang, case) == date(2026, 12, 21)
    refused = book(client, zhang, slot)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "appointments.closed"

    assert follow_calendar() == [SUCCEEDED]
    assert _due(client, zhang, case) == date(2026, 12, 22)
    assert _slots_closed(hall) == {True}

    gone = client.delete(f"{OVERRIDES}/{made.get_json()['id']}", headers=editor | key())
    assert gone.status_code == 204
    assert len(jobs_named(CALENDAR_FOLLOW)) == 2
    assert _due(client, zhang, case) == date(2026, 12, 22)
    assert book(client, zhang, slot).status_code == 201  # open again from the answer on
    assert follow_calendar() == [SUCCEEDED]
    assert _due(client, zhang, case) == date(2026, 12, 21)
    assert _slots_closed(hall) == {False}


def test_an_override_refused_writes_no_job(app: Any, client: Any) -> None:
    editor = _editor(app, client)
    assert _close(client, editor).status_code == 201
    assert _close(client, editor, kind="workday").status_code == 409  # one per region and date
    assert _close(client, editor, date="2099-12-10").status_code == 422
    assert client.delete(f"{OVERRIDES}/nope", headers=editor | key()).status_code == 404
    assert len(jobs_named(CALENDAR_FOLLOW)) == 1


def test_an_override_whose_job_cannot_be_written_is_not_stored_either(
    app: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = _editor(app, client)

    def unwritable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("outbox table unavailable")

    monkeypatch.setattr(outbox_service, "add", unwritable)
    assert _close(client, editor).status_code == 500
    monkeypatch.undo()
    session = db.session()
    assert session.scalars(select(CalendarOverride)).all() == []
    session.rollback()
    assert jobs_named(CALENDAR_FOLLOW) == []


def test_a_step_that_fails_makes_the_job_retry_and_a_later_run_finishes_every_step(
    app: Any, client: Any, zhang: dict, monday: clock_mod.FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _accepted(client, zhang)
    hall, _ = _held_slot(app, client, zhang)
    assert _close(client, _editor(app, client)).status_code == 201

    def case_step_fails(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("could not serialize access")

    monkeypatch.setattr(calendar_changes, "follow", case_step_fails)
    assert follow_calendar() == [RETRYING]
    [job] = jobs_named(CALENDAR_FOLLOW)
    assert "cases" in (job.last_error or "")
    assert _due(client, zhang, case) == date(2026, 12, 21)
    monkeypatch.setattr(closures, "follow", lambda *a, **kw: pytest.fail("retried before its backoff"))
    assert follow_calendar() == ["skipped"]

    monkeypatch.undo()
    _wait_for_retry(monday)
    assert follow_calendar() == [SUCCEEDED]
    assert _due(client, zhang, case) == date(2026, 12, 22)
    assert _slots_closed(hall) == {True}  # the halls' step, run again: as it was
    # Run once more (a duplicate delivery, a replay): nothing moves twice.
    assert calendar_changes.follow_all(db.session(), day=DAY, region="440100", **_days(app)) == {
        "cases": 0, "halls": 0, "rectifications": 0,
    }  # fmt: skip
    assert _due(client, zhang, case) == date(2026, 12, 22)


def test_a_job_that_keeps_failing_is_dead_for_the_operator_to_replay(
    app: Any, client: Any, zhang: dict, monday: clock_mod.FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _accepted(client, zhang)
    assert _close(client, _editor(app, client)).status_code == 201

    def hall_step_fails(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("could not serialize access")

    monkeypatch.setattr(closures, "follow", hall_step_fails)
    began = monday.now()
    states = follow_calendar()
    while states == [RETRYING]:
        _wait_for_retry(monday)
        states = follow_calendar()
    assert states == [DEAD]
    # Tried for hours first: an outage of an hour or two does not leave the due dates behind.
    assert (monday.now() - began).total_seconds() >= calendar_changes.FOLLOW_RETRY_SPAN
    monkeypatch.undo()

    ops = admin_headers(client, make_operator(app, username="olga", roles=("ops",)))
    [dead] = client.get("/admin/v1/jobs?status=dead", headers=ops).get_json()["items"]
    assert dead["name"] == CALENDAR_FOLLOW and "halls" in dead["last_error"]
    assert _due(client, relogin(app, zhang), case) == date(2026, 12, 22)  # the other steps ran
    assert client.post(f"/admin/v1/jobs/{dead['id']}/replay", headers=ops).status_code == 200
    assert follow_calendar() == [SUCCEEDED]


def test_jobs_of_an_override_added_then_removed_end_on_the_calendar_whichever_runs_last(
    app: Any, client: Any, zhang: dict, monday: clock_mod.FrozenClock
) -> None:
    """The job of the closure, run after the job of its removal (a retry, a slower worker),
    recounts on the calendar as it is then: it brings back no closure."""
    case = _accepted(client, zhang)
    hall, _ = _held_slot(app, client, zhang)
    editor = _editor(app, client)
    made = _close(client, editor)
    monday.advance(1)
    assert client.delete(f"{OVERRIDES}/{made.get_json()['id']}", headers=editor | key()).status_code == 204
    added, removed = (job.id for job in jobs_named(CALENDAR_FOLLOW))

    assert execute_outbox_job(removed) == SUCCEEDED
    assert execute_outbox_job(added) == SUCCEEDED
    assert _due(client, zhang, case) == date(2026, 12, 21)
    assert _slots_closed(hall) == {False}

    assert _close(client, editor).status_code == 201  # entered again: its job counts the day
    assert follow_calendar() == [SUCCEEDED]
    assert _due(client, zhang, case) == date(2026, 12, 22)
    assert _slots_closed(hall) == {True}


def test_a_closure_taken_back_while_its_job_closes_the_slots_waits_and_its_own_job_reopens_them(
    app: Any, client: Any, zhang: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers: the closure's job has read the day as closed when the closure is taken back
    and that job runs. Each job reads the calendar under its lock (shared), so the removal waits
    for the first job's commit and the second job, run after it, leaves the slots open."""
    from tests.concurrency import Competing

    hall, _ = _held_slot(app, client, zhang)
    editor = _editor(app, client)
    made = _close(client, editor)
    real, taken_back, started = closures.open_hours, [], []

    def take_back(client: Any) -> Any:
        gone = client.delete(f"{OVERRIDES}/{made.get_json()['id']}", headers=editor | key())
        with app.app_context():
            return gone.status_code, follow_calendar()  # the closure's own job is running: skipped

    def read_then_taken_back(*args: Any, **kwargs: Any) -> Any:
        hours = real(*args, **kwargs)
        if not started:  # the first read, of the closure's job (the other's comes in its thread)
            started.append(True)
            taken_back.append(Competing(app, take_back))
        return hours

    monkeypatch.setattr(closures, "open_hours", read_then_taken_back)
    assert follow_calendar() == [SUCCEEDED]
    monkeypatch.undo()
    assert taken_back and taken_back[0].result() == (204, [SUCCEEDED])
    assert _slots_closed(hall) == {False}


def test_one_case_that_cannot_be_recounted_is_skipped_and_the_others_follow(
    app: Any, client: Any, zhang: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """A case whose pinned item version the catalog no longer has fails the same way on every
    retry: it is left as it was and logged by id, and the other cases of its batch (and of the
    batches after) still follow the calendar; the job succeeds."""
    from domain.applications.models import Application

    first, second = _accepted(client, zhang), _accepted(client, zhang)
    broken, healthy = sorted((first, second))  # the broken one is recounted first
    session = db.session()
    row = session.get(Application, broken)
    row.items = [dict(row.items[0], version=999)]  # a pinned version the catalog no longer has
    session.commit()
    assert _close(client, _editor(app, client)).status_code == 201

    with caplog.at_level("ERROR", logger="domain.applications.calendar_changes"):
        assert follow_calendar() == [SUCCEEDED]
    assert _due(client, zhang, healthy) == date(2026, 12, 22)
    skipped = [r for r in caplog.records if getattr(r, "application_id", None) == broken]
    assert skipped and skipped[0].error == "VersionNotFound"
    session = db.session()
    assert session.get(Application, broken).due_on == date(2026, 12, 21)  # left as it was
    session.rollback()


class _StandInTimeout(Exception):
    """As RQ's JobTimeoutException: an Exception, raised inside whatever step is running."""


def test_an_exception_never_to_be_caught_stops_the_later_steps_and_propagates(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's timeout (raised in the middle of a step) must end the run: a step after it
    would run past the job's lock, while the outbox may already give the job to another worker."""
    ran: list[str] = []

    def timed_out(*args: Any, **kwargs: Any) -> int:
        ran.append("halls")
        raise _StandInTimeout("job exceeded its timeout")

    monkeypatch.setattr(closures, "follow", timed_out)
    rectifications = calendar_changes.rectification_calendar
    monkeypatch.setattr(rectifications, "follow", lambda *a, **kw: ran.append("rectifications"))
    with pytest.raises(_StandInTimeout):
        calendar_changes.follow_all(
            db.session(), day=DAY, region="440100", never_caught=(_StandInTimeout,), **_days(app)
        )
    assert ran == ["halls"]


def test_the_worker_passes_rqs_job_timeout_as_never_caught(
    app: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rq.timeouts import JobTimeoutException

    assert _close(client, _editor(app, client)).status_code == 201

    def timed_out(*args: Any, **kwargs: Any) -> int:
        raise JobTimeoutException("Task exceeded maximum timeout value (120 seconds)")

    monkeypatch.setattr(closures, "follow", timed_out)
    rectifications = calendar_changes.rectification_calendar
    monkeypatch.setattr(rectifications, "follow", lambda *a, **kw: pytest.fail("ran past the timeout"))
    assert follow_calendar() == [RETRYING]  # run again from the start, after its backoff
    [job] = jobs_named(CALENDAR_FOLLOW)
    assert (job.last_error or "").startswith("JobTimeoutException")


def test_a_database_error_on_one_case_makes_the_job_retry_rather_than_skip_it(
    app: Any, client: Any, zhang: dict, monday: clock_mod.FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock timeout or a lost connection is not a case that cannot be recounted: the cases
    step fails and the job retries, and the retry moves the case."""
    from sqlalchemy.exc import OperationalError

    case = _accepted(client, zhang)
    assert _close(client, _editor(app, client)).status_code == 201

    def locked(*args: Any) -> int:
        raise OperationalError("SELECT applications", {}, Exception("database is locked"))

    monkeypatch.setattr(calendar_changes, "_recount", locked)
    assert follow_calendar() == [RETRYING]
    assert "cases (OperationalError" in (jobs_named(CALENDAR_FOLLOW)[0].last_error or "")
    monkeypatch.undo()
    _wait_for_retry(monday)
    assert follow_calendar() == [SUCCEEDED]
    assert _due(client, zhang, case) == date(2026, 12, 22)


def test_the_job_counts_rectifications_with_the_periods_configured_when_it_runs(
    app: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry across a deploy, or a replay days later, counts as the sweeper then does."""
    assert _close(client, _editor(app, client)).status_code == 201
    monkeypatch.setitem(app.config, "RECTIFY_DECIDE_WORKING_DAYS", 7)
    monkeypatch.setitem(app.config, "RECTIFY_REMIND_WORKING_DAYS_BEFORE", 2)
    monkeypatch.setitem(app.config, "RECTIFY_WORKING_DAYS", 9)
    seen: dict[str, Any] = {}

    def follow_all(session: Any, **kwargs: Any) -> dict:
        seen.update(kwargs)
        return {}

    monkeypatch.setattr(calendar_changes, "follow_all", follow_all)
    assert follow_calendar() == [SUCCEEDED]
    assert (seen["decide_days"], seen["remind_days"], seen["working_days"]) == (7, 2, 9)
