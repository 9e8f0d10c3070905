"""The department's deadline to answer a 差评 follows the calendar as a case's due date does (both
ways: it is the department's time limit, not a date a citizen must act by): a day closed inside
it gives the department that working day, a day opened takes it back, and a task escalated only
because a closure was not yet entered is no longer overdue once it is.

The case: a bad rating Monday 2026-12-07 (Beijing), due in five working days: Monday 12-14."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.api.v1.applications.conftest import SS_CARD, key, seeded, zhang  # noqa: F401 - fixtures
from tests.domain.operators.factories import admin_headers, make_operator
from tests.evaluations.test_concurrency import APPEAL, _bad_rating, _decide, _respond, officers  # noqa: F401
from tests.evaluations.test_rectification_follows_the_calendar import (
    OVERRIDES,
    _editor,
    _on,
    _override,
    clock,  # noqa: F401 - the frozen Monday
)
from tests.evaluations.test_rectification_limits import _again
from tests.evaluations.test_rectification_reminder import _sweep
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures
from tests.outbox_jobs import follow_calendar


def _listed(client: Any, officer: dict, task_id: str, **query: str) -> dict | None:
    page = client.get("/admin/v1/rectifications", query_string=query, headers=officer).get_json()
    return next((t for t in page["items"] if t["id"] == task_id), None)


def _officer(app: Any, client: Any, name: str) -> dict:
    """An officer signed in now (days into the test the first ones' sessions have expired)."""
    return admin_headers(client, make_operator(app, username=name, roles=("case_operator",)))


def _due(client: Any, officer: dict, task_id: str) -> str:
    listed = _listed(client, officer, task_id)
    assert listed is not None
    return listed["due_on"]


def test_the_departments_deadline_moves_with_a_closure_and_back(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    _, task_id = _bad_rating(client, zhang)
    assert _due(client, officers[0], task_id) == "2026-12-14"
    closed = _override(app, client, "2026-12-09")
    assert _due(client, officers[0], task_id) == "2026-12-15"
    remover = _editor(app, client, "cal-remover")
    assert client.delete(f"{OVERRIDES}/{closed}", headers=remover | key()).status_code == 204
    assert _due(client, officers[0], task_id) == "2026-12-15"  # until the follow-up job runs
    follow_calendar()
    assert _due(client, officers[0], task_id) == "2026-12-14"
    _override(app, client, "2026-12-10")
    _on(clock, date(2026, 12, 15))
    _sweep(app, monkeypatch)
    officer = _officer(app, client, "rectify-1215")
    assert _listed(client, officer, task_id, overdue="true") is None  # due 12-15: not late yet
    _on(clock, date(2026, 12, 16))
    _sweep(app, monkeypatch)
    assert _listed(client, _officer(app, client, "rectify-1216"), task_id, overdue="true") is not None


def test_a_task_escalated_before_the_closure_was_entered_is_no_longer_overdue(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    """The typhoon closed the offices on Monday 12-14; the closure is entered on Tuesday, after
    the sweeper found the task late: the department still has Tuesday."""
    _, task_id = _bad_rating(client, zhang)
    _on(clock, date(2026, 12, 15))
    _sweep(app, monkeypatch)
    officer = _officer(app, client, "rectify-1215")
    assert _listed(client, officer, task_id, overdue="true") is not None
    _override(app, client, "2026-12-14")
    assert _due(client, officer, task_id) == "2026-12-15"
    assert _listed(client, officer, task_id, overdue="true") is None
    _sweep(app, monkeypatch)
    assert _listed(client, officer, task_id, overdue="true") is None


def test_the_review_deadline_after_an_appeal_moves_with_a_closure(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,  # noqa: F811
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    _on(clock, date(2026, 12, 8))  # appealed Tuesday: the review is due Tuesday 12-15
    zhang = _again(app, zhang)
    assert _decide(client, zhang, app_id, APPEAL).status_code == 200
    officer = _officer(app, client, "rectify-1208")
    assert _due(client, officer, task_id) == "2026-12-15"
    _override(app, client, "2026-12-08")  # the day of the appeal is not counted
    assert _due(client, officer, task_id) == "2026-12-15"
    _override(app, client, "2026-12-11")
    assert _due(client, officer, task_id) == "2026-12-16"
