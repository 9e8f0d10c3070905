"""After the review's response no appeal is left (`APPEAL_ROUNDS`): its notices, the response's
and the reminder's, ask the citizen to confirm and name a complaint, not an appeal that would
then be refused 409 `evaluations.appeal_limit`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import db
from domain.applications.models import ApplicationNotice
from tests.api.v1.applications.conftest import SS_CARD, seeded, zhang  # noqa: F401 - fixtures
from tests.evaluations.test_concurrency import APPEAL, _bad_rating, _decide, _task, officers  # noqa: F401
from tests.evaluations.test_rectification_deadline import _told
from tests.evaluations.test_rectification_limits import _again
from tests.evaluations.test_rectification_reminder import REMINDER, _respond, _sweep, _until
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures
from tests.notifications.conftest import run_notifier


def test_the_last_rounds_notices_offer_a_complaint_not_an_appeal(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    _respond(task_id)
    run_notifier(app)
    first_told = _told(client, zhang, "rectification_responded")
    assert len(first_told) == 1 and "确认或申诉" in first_told[0], first_told
    assert _decide(client, zhang, app_id, APPEAL).status_code == 200
    _respond(task_id, "复核后已再次整改")  # round 2: no appeal after it
    decide_by = _task(app_id).decide_by
    _until(clock, decide_by)
    assert _sweep(app, monkeypatch)["rectifications_reminded"] == 1
    run_notifier(app)
    zhang = _again(app, zhang)
    responded = _told(client, zhang, "rectification_responded")
    assert len(responded) == 2, responded
    last = responded[0]  # newest first
    assert "申诉" not in last and "可提交投诉" in last and decide_by.isoformat() in last, last
    reminded = _told(client, zhang, REMINDER)
    assert len(reminded) == 1, reminded
    assert "申诉" not in reminded[0] and "可提交投诉" in reminded[0], reminded
    assert f"{decide_by.isoformat()}（含当日）" in reminded[0] and "视为确认" in reminded[0], reminded
    english = _told(client, zhang, REMINDER, "en")
    assert "appeal" not in english[0] and "complaint" in english[0], english
    # And indeed an appeal is refused then.
    refused = _decide(client, zhang, app_id, APPEAL)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "evaluations.appeal_limit"
    session = db.session()
    assert session.scalar(select(ApplicationNotice.params).where(ApplicationNotice.event_type == REMINDER))[
        "final"
    ]
    session.rollback()
