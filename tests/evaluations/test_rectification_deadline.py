"""The period to confirm or appeal a rectification's response, as the sweeper keeps it: a
response given before periods were kept gets one from the day the sweeper first sees it (the
citizen told the date once), never from when it was given; a new round meanwhile keeps its own;
the step goes in batches and one failing task does not stop the others; past the period the
citizen's view offers no decision, and a confirmation by default is told and published apart."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from core import audit
from core.db import db
from domain.applications.deadlines import local_date
from domain.applications.models import ApplicationNotice
from domain.evaluations import rectification_sweep
from domain.evaluations.models import RectificationTask
from tests.api.v1.applications.conftest import SS_CARD, seeded, zhang  # noqa: F401 - fixtures
from tests.concurrency import Competing
from tests.evaluations.test_concurrency import APPEAL, _bad_rating, _decide, _respond, _task, officers  # noqa: F401
from tests.evaluations.test_rectification_limits import _again, _decide_by, _mine
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures
from tests.notifications.conftest import run_notifier


def _as_before_periods(task_id: str, clock: Any) -> None:
    """The task as a response given 40 days before the migration left it: no `decide_by`, and
    its notice named no date."""
    session = db.session()
    task = session.get(RectificationTask, task_id)
    task.decide_by, task.responded_at = None, clock.now() - timedelta(days=40)
    for notice in session.scalars(
        select(ApplicationNotice).where(ApplicationNotice.event_type == "rectification_responded")
    ):
        notice.params = {**notice.params, "decide_by": None}
    session.commit()


def _told(client: Any, who: dict, event_type: str, lang: str = "zh") -> list[str]:
    headers = who["headers"] | ({"Accept-Language": "en"} if lang == "en" else {})
    inbox = client.get("/v1/notifications", headers=headers).get_json()["items"]
    return [n["body"] for n in inbox if n["event_type"] == event_type]


def test_a_response_from_before_periods_gets_one_from_today_and_is_told(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    _as_before_periods(task_id, clock)
    assert rectification_sweep.close_undecided(db.session(), clock.now()) == 0  # not confirmed at once
    decide_by = _decide_by(app_id, local_date(clock.now()))
    task = _task(app_id)
    assert (task.status, task.decide_by, task.closed_by) == ("responded", decide_by, None)
    assert rectification_sweep.close_undecided(db.session(), clock.now()) == 0
    run_notifier(app)
    dated = [b for b in _told(client, zhang, "rectification_responded") if decide_by.isoformat() in b]
    assert len(dated) == 1 and "含当日" in dated[0] and "逾期视为确认" in dated[0], dated
    english = [b for b in _told(client, zhang, "rectification_responded", "en") if decide_by.isoformat() in b]
    assert len(english) == 1 and f"by {decide_by.isoformat()} (inclusive)" in english[0], english
    mine = _mine(client, zhang, app_id)
    assert (mine["can_confirm"], mine["can_appeal"]) == (True, True)

    while local_date(clock.now()) <= decide_by:
        clock.advance(days=1)
    assert rectification_sweep.close_undecided(db.session(), clock.now()) == 1
    assert rectification_sweep.close_undecided(db.session(), clock.now()) == 0
    run_notifier(app)
    zhang = _again(app, zhang)
    told = _told(client, zhang, "rectification_deemed_confirmed")
    assert len(told) == 1 and decide_by.isoformat() in told[0] and "视为确认" in told[0], told
    english = _told(client, zhang, "rectification_deemed_confirmed", "en")
    assert len(english) == 1 and "counts as accepted" in english[0], english
    figures = client.get(f"/v1/services/{SS_CARD}/ratings").get_json()
    assert (figures["bad"], figures["bad_rectified"], figures["bad_rectified_by_default"]) == (1, 0, 1)


def test_a_new_round_during_the_backfill_keeps_its_own_period(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """While the sweeper counts an old response's period, the citizen appeals and the department
    answers the review: the sweeper neither gives round 2 round 1's period nor confirms it."""
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    _as_before_periods(task_id, clock)
    real, started = rectification_sweep.last_day_to_decide, threading.Event()
    other: list[Competing] = []

    def appeal_and_answer(c: Any) -> tuple[int, int]:
        appealed = _decide(c, zhang, app_id, APPEAL).status_code
        return appealed, _respond(c, officers[1], task_id, "复核后已再次整改").status_code

    def counting(*args: Any) -> Any:
        if threading.current_thread() is threading.main_thread() and not started.is_set():
            started.set()
            other.append(Competing(app, appeal_and_answer))
        return real(*args)

    monkeypatch.setattr(rectification_sweep, "last_day_to_decide", counting)
    closed = rectification_sweep.close_undecided(db.session(), clock.now())
    assert other and other[0].result() == (200, 200)
    assert closed == 0
    task = _task(app_id)
    assert (task.status, task.rounds, task.closed_by) == ("responded", 2, None)
    assert task.decide_by == _decide_by(app_id, local_date(clock.now()))


def _late(client: Any, who: dict, officer: dict, clock: Any, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        app_id, task_id = _bad_rating(client, who)
        assert _respond(client, officer, task_id).status_code == 200
        ids.append(app_id)
    return ids


def test_one_failing_task_does_not_stop_the_others(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
    caplog: Any,
) -> None:
    apps = _late(client, zhang, officers[0], clock, 2)
    later = clock.now() + timedelta(days=30)
    calls: list[str] = []

    def flaky(session: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["target_id"])
        if len(calls) == 1:
            raise RuntimeError("audit store away")
        return audit.record(session, **kwargs)

    monkeypatch.setattr(rectification_sweep, "audit", SimpleNamespace(record=flaky))
    with caplog.at_level(logging.ERROR, logger="yiwang.evaluations"):
        assert rectification_sweep.close_undecided(db.session(), later) == 1
    failed = [r for r in caplog.records if r.getMessage() == "a rectification task failed"]
    assert len(failed) == 1 and failed[0].task_id == calls[0] and failed[0].error == "RuntimeError"
    assert failed[0].exc_info is None  # no error text: it can carry the row's values
    assert sorted(_task(a).status for a in apps) == ["confirmed", "responded"]
    assert rectification_sweep.close_undecided(db.session(), later) == 1  # the next pass
    assert [_task(a).status for a in apps] == ["confirmed", "confirmed"]


def test_the_step_goes_in_bounded_batches(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    apps = _late(client, zhang, officers[0], clock, 3)
    monkeypatch.setattr(rectification_sweep, "BATCH", 1)
    monkeypatch.setattr(rectification_sweep, "MAX_BATCHES", 2)
    later = clock.now() + timedelta(days=30)
    assert rectification_sweep.close_undecided(db.session(), later) == 2
    assert rectification_sweep.close_undecided(db.session(), later) == 1
    assert [_task(a).status for a in apps] == ["confirmed"] * 3


def test_past_the_period_the_view_offers_no_decision_before_the_sweeper(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    decide_by = _decide_by(app_id, local_date(clock.now()))
    while local_date(clock.now()) < decide_by:  # the last day still counts
        clock.advance(days=1)
    zhang = _again(app, zhang)
    mine = _mine(client, zhang, app_id)
    assert (mine["can_confirm"], mine["can_appeal"]) == (True, True)
    clock.advance(days=1)
    zhang = _again(app, zhang)
    mine = _mine(client, zhang, app_id)
    assert mine["can_appeal"] is False, mine  # the appeal would be 409
    assert (mine["status"], mine["can_confirm"]) == ("responded", False), mine
    late = _decide(client, zhang, app_id, APPEAL)
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "evaluations.decision_closed"


def test_the_decision_documents_its_refusals(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    answers = spec["paths"]["/v1/applications/{application_id}/evaluation/decision"]["post"]["responses"]
    described = answers["409"]["description"]
    for code in ("evaluations.decision_closed", "evaluations.appeal_limit", "evaluations.task_state"):
        assert code in described, described
