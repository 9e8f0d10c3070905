"""Two changes of one rectification task at once: the task is locked before its state is
checked, so the second waits for the first to commit and is then refused (409) on the state the
first left; nothing the first was told succeeded is overwritten or contradicted."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.db import db
from domain.evaluations import rectification
from domain.evaluations import service as evaluations
from domain.evaluations.models import Evaluation, RectificationTask
from tests.api.v1.applications.conftest import SS_CARD, seeded, zhang  # noqa: F401 - fixtures
from tests.domain.operators.factories import admin_headers, make_operator
from tests.evaluations.meanwhile import meanwhile
from tests.evaluations.test_evaluations import _completed, rate
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures


@pytest.fixture
def officers(app: Any, client: Any) -> list[dict]:
    return [
        admin_headers(client, make_operator(app, username=f"rectify-op{i}", roles=("case_operator",)))
        for i in range(2)
    ]


def _task(app_id: str) -> RectificationTask:
    session = db.session()
    task = session.scalar(
        select(RectificationTask)
        .join(Evaluation, Evaluation.id == RectificationTask.evaluation_id)
        .where(Evaluation.application_id == app_id)
        .execution_options(populate_existing=True)
    )
    session.rollback()
    return task


def _bad_rating(client: Any, who: dict) -> tuple[str, str]:
    app_id = _completed(client, who)
    made = rate(client, who, app_id, level="非常不满意", reason="窗口让我跑了三次")
    assert made.status_code == 201, made.get_json()
    return app_id, _task(app_id).id


def _respond(client: Any, officer: dict, task_id: str, text: str = "已整改") -> Any:
    return client.post(
        f"/admin/v1/rectifications/{task_id}/response", json={"response": text}, headers=officer
    )


def _decide(client: Any, who: dict, app_id: str, body: dict) -> Any:
    return client.post(f"/v1/applications/{app_id}/evaluation/decision", json=body, headers=who["headers"])


APPEAL = {"accept": False, "reason": "并未解决"}
APPEAL_AGAIN = {"accept": False, "reason": "仍未解决（第二台手机）"}


@pytest.mark.parametrize(
    ("first", "second"),
    [({"accept": True}, APPEAL), (APPEAL, {"accept": True}), (APPEAL, APPEAL_AGAIN)],
    ids=["accept-then-appeal", "appeal-then-accept", "appeal-twice"],
)
def test_two_decisions_at_once_one_wins(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],
    monkeypatch: Any,
    first: dict,
    second: dict,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    assert _respond(client, officers[0], task_id).status_code == 200
    other = meanwhile(monkeypatch, rectification, app, lambda c: _decide(c, zhang, app_id, second))
    won = _decide(client, zhang, app_id, first)
    lost = other.finish()
    assert won.status_code == 200, won.get_json()
    assert other.waited, "the second decision went through while the first held the task"
    assert lost.status_code == 409, lost.get_json()
    assert lost.get_json()["error"]["code"] == "evaluations.task_state"
    task = _task(app_id)
    if first["accept"]:
        assert (task.status, task.rounds, task.appeal_reason_enc) == ("confirmed", 1, None)
        assert task.closed_at is not None
    else:
        assert (task.status, task.rounds, task.closed_at) == ("appealed", 2, None)
        assert evaluations.appeal_reason_of(task, app.extensions["yiwang"].encryptor) == first["reason"]


def test_two_operators_responding_at_once_one_wins(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officers: list[dict],
    monkeypatch: Any,
) -> None:
    app_id, task_id = _bad_rating(client, zhang)
    other = meanwhile(
        monkeypatch, rectification, app, lambda c: _respond(c, officers[1], task_id, "整改意见 1")
    )
    won = _respond(client, officers[0], task_id, "整改意见 0")
    lost = other.finish()
    assert won.status_code == 200, won.get_json()
    assert other.waited, "the second answer went through while the first held the task"
    assert lost.status_code == 409, lost.get_json()
    task = _task(app_id)
    assert (task.status, task.response) == ("responded", "整改意见 0")
    # The citizen's appeal opens the next round, which either operator may answer again.
    assert _decide(client, zhang, app_id, APPEAL).status_code == 200
    assert _respond(client, officers[1], task_id, "整改意见 2").status_code == 200
