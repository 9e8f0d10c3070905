"""A rectification ends: one review round (申诉复核) after the first response, and a response
the citizen neither confirms nor appeals within `RECTIFY_DECIDE_WORKING_DAYS` working days is
confirmed by default by the sweeper (audited); a late or further appeal is a clear 409."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from core.audit import AuditEvent
from core.db import db
from domain.applications.deadlines import local_date
from domain.applications.models import Application
from domain.applications.service import spec_of
from domain.calendar import service as calendar
from domain.evaluations import rectification, rectification_sweep
from tests.api.v1.applications.conftest import SS_CARD, seeded, zhang  # noqa: F401 - fixtures
from tests.evaluations.test_concurrency import APPEAL, _bad_rating, _decide, _respond, _task, officers  # noqa: F401
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures
from workers import sweeper


def _mine(client: Any, who: dict, app_id: str) -> dict:
    return client.get(f"/v1/applications/{app_id}/evaluation", headers=who["headers"]).get_json()[
        "rectification"
    ]


def test_one_review_round_after_the_first_response(
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    assert _mine(client, zhang, app_id)["can_appeal"] is True
    appealed = _decide(client, zhang, app_id, APPEAL)
    assert appealed.status_code == 200 and appealed.get_json()["rounds"] == 2, appealed.get_json()
    assert _respond(client, officers[1], task_id, "复核后已再次整改").status_code == 200
    assert _mine(client, zhang, app_id)["can_appeal"] is False
    again = _decide(client, zhang, app_id, {"accept": False, "reason": "还是不行"})
    assert again.status_code == 409, again.get_json()
    assert again.get_json()["error"]["code"] == "evaluations.appeal_limit"
    assert "申诉复核" in again.get_json()["error"]["message"]
    english = client.post(
        f"/v1/applications/{app_id}/evaluation/decision",
        json={"accept": False, "reason": "still not fixed"},
        headers=zhang["headers"] | {"Accept-Language": "en"},
    ).get_json()["error"]
    assert english["code"] == "evaluations.appeal_limit" and "already been reviewed" in english["message"]
    task = _task(app_id)
    assert (task.status, task.rounds) == ("responded", 2)  # nothing changed
    assert _decide(client, zhang, app_id, {"accept": True}).get_json()["status"] == "confirmed"


def _again(app: Any, who: dict) -> dict:
    """The citizen signed in afresh (days later, their first access token has expired)."""
    from domain.accounts.models import Account
    from domain.auth import sessions

    svc = app.extensions["yiwang"]
    session = db.session()
    pair = sessions.start_session(
        session, tokens=svc.tokens, policy=svc.citizen_policy,
        account=session.get(Account, who["account_id"]), channel="app", device_label="测试手机",
    )  # fmt: skip
    return who | {"headers": {"Authorization": f"Bearer {pair.access_token}"}}


def _decide_by(app_id: str, responded_on: date) -> date:
    session = db.session()
    region = spec_of(session, session.get(Application, app_id)).region
    due = calendar.add_working_days(session, responded_on, rectification.DECIDE_WORKING_DAYS, region=region)
    session.rollback()
    return due


def test_an_undecided_response_is_confirmed_by_default_after_the_period(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    decide_by = _decide_by(app_id, local_date(clock.now()))
    assert _mine(client, zhang, app_id)["decide_by"] == decide_by.isoformat()
    # The notice of the response tells the citizen by when, and what silence means.
    from tests.notifications.conftest import run_notifier

    run_notifier(app)
    inbox = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
    told = [n["body"] for n in inbox if n["event_type"] == "rectification_responded"]
    asked = f"请于 {decide_by.isoformat()}（含当日）前确认或申诉，逾期视为确认"
    assert len(told) == 1 and asked in told[0], told
    while local_date(clock.now()) < decide_by:  # the last day still counts
        clock.advance(days=1)
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        assert sweeper.run_once(0)["rectifications_confirmed_by_default"] == 0
    assert _task(app_id).status == "responded"
    clock.advance(days=1)
    zhang = _again(app, zhang)
    # Late: refused even before the sweeper came by, and nothing is written.
    for body in ({"accept": True}, APPEAL):
        late = _decide(client, zhang, app_id, body)
        assert late.status_code == 409 and late.get_json()["error"]["code"] == "evaluations.decision_closed"
        assert decide_by.isoformat() in late.get_json()["error"]["message"]
    assert (_task(app_id).status, _task(app_id).rounds) == ("responded", 1)
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        assert sweeper.run_once(0)["rectifications_confirmed_by_default"] == 1
    task = _task(app_id)
    assert (task.status, task.closed_by) == ("confirmed", "deadline") and task.closed_at is not None
    assert _mine(client, zhang, app_id)["closed_by"] == "deadline"
    events = (
        db.session()
        .scalars(select(AuditEvent).where(AuditEvent.action == "rectification.confirmed_by_default"))
        .all()
    )
    assert [(e.target_id, e.actor_type) for e in events] == [(task_id, "system")]
    assert rectification_sweep.close_undecided(db.session(), clock.now()) == 0  # once
    after = _decide(client, zhang, app_id, APPEAL)
    assert after.status_code == 409 and after.get_json()["error"]["code"] == "evaluations.decision_closed"
    figures = client.get(f"/v1/services/{SS_CARD}/ratings").get_json()
    # Confirmed by default is published apart from what citizens confirmed.
    assert (figures["bad"], figures["bad_rectified"], figures["bad_rectified_by_default"]) == (1, 0, 1)


def _refused(resp: Any, *words: str) -> str:
    assert resp.status_code == 409, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "evaluations.task_state"
    assert all(w in error["message"] for w in words), error["message"]
    return error["message"]


def test_a_refused_step_says_why(
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    _refused(_decide(client, zhang, app_id, {"accept": True}), "尚未回复")
    en = {"Accept-Language": "en"}
    url = f"/v1/applications/{app_id}/evaluation/decision"
    early = client.post(url, json={"accept": True}, headers=zhang["headers"] | en)
    _refused(early, "not answered")
    assert _respond(client, officers[0], task_id).status_code == 200
    _refused(_respond(client, officers[1], task_id, "再答一次"), "已回复", "确认或申诉")
    again = client.post(
        f"/admin/v1/rectifications/{task_id}/response", json={"response": "again"}, headers=officers[1] | en
    )
    _refused(again, "awaits the citizen")
    assert _decide(client, zhang, app_id, {"accept": True}).status_code == 200
    _refused(_decide(client, zhang, app_id, {"accept": True}), "已办结")
    _refused(_respond(client, officers[0], task_id, "补充"), "已办结")


def test_a_last_day_appeal_and_the_sweeper_at_once(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    """The citizen appeals on the last day while the sweeper's pass of the next day (another
    server's clock) reaches the task: the sweeper waits for the appeal, then leaves the task
    appealed; it is never both appealed and confirmed by default."""
    from datetime import timedelta

    from tests.evaluations.meanwhile import meanwhile

    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    decide_by = _decide_by(app_id, local_date(clock.now()))
    while local_date(clock.now()) < decide_by:
        clock.advance(days=1)
    zhang = _again(app, zhang)
    tomorrow = clock.now() + timedelta(days=1)

    def sweep(_client: Any) -> int:
        with app.app_context():
            return rectification_sweep.close_undecided(db.session(), tomorrow)

    other = meanwhile(monkeypatch, rectification, app, sweep)
    appealed = _decide(client, zhang, app_id, APPEAL)
    closed = other.finish()
    assert appealed.status_code == 200, appealed.get_json()
    assert other.waited, "the sweeper went through while the appeal held the task"
    assert closed == 0
    task = _task(app_id)
    assert (task.status, task.rounds, task.closed_by) == ("appealed", 2, None)
