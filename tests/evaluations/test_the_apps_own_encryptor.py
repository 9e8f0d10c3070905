"""The 好差评 path encrypts and decrypts with the Encryptor of the app it runs in (its services),
not the process-wide `core.crypto.crypto` another app built in the same process rebinds: a rating
stored under this app's keys stays readable, and what it stores now is under its keys again."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from core.db import db
from domain.applications.models import Application
from domain.evaluations import service as evaluations
from domain.evaluations.models import Evaluation, RectificationTask
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.domain.operators.factories import admin_headers, make_operator
from tests.forwarding.conftest import forward, province, submitted, yiwang_http  # noqa: F401 - fixtures

OTHER_KEYS = "other1:" + base64.b64encode(b"another-app-key!").decode()


@pytest.fixture
def another_app(app_config: dict) -> Iterator[Any]:
    """A second app with keys of its own, built after the test's app (as tests that build one do)."""
    from core.crypto import crypto
    from factory import create_app

    saved = crypto.encryptor, crypto.hasher
    try:
        yield create_app(app_config | {"DATA_KEYS": OTHER_KEYS, "DATA_KEY_ACTIVE": "other1"})
    finally:
        crypto.encryptor, crypto.hasher = saved


def test_ratings_use_their_apps_keys_after_another_app_was_built(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    services: Any,
    province: Any,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    from rq import SimpleWorker

    from core.outbox.service import outbox
    from core.redis import get_redis

    officer = admin_headers(client, make_operator(app, username="keys-op", roles=("case_operator",)))
    case = submitted(client, zhang)
    forward(services)  # the province has the case
    db.session().get(Application, case["id"]).status = "completed"
    db.session.commit()
    url = f"/v1/applications/{case['id']}/evaluation"
    body = {"level": "非常不满意", "reason": "窗口让我跑了三次"}
    made = client.post(url, json=body, headers=zhang["headers"])
    assert made.status_code == 201, made.get_json()

    other = request.getfixturevalue("another_app")
    assert other.extensions["yiwang"].encryptor is not services.encryptor
    # Stored under this app's keys before: still read with them (the view, the province push).
    read = client.get(url, headers=zhang["headers"])
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["reason"] == "窗口让我跑了三次"
    SimpleWorker([outbox.queue()], connection=get_redis()).work(burst=True, with_scheduler=False)
    pushed = province.http.get(f"{province.url}/_sim/evaluations").json()["evaluations"]
    assert [p["writingEvaluation"] for p in pushed] == ["窗口让我跑了三次"]
    # Written now: under this app's keys (the appeal), and the operator reads it with them.
    listed = client.get("/admin/v1/rectifications?status=open", headers=officer).get_json()["items"]
    answer = {"response": "已约谈窗口人员并改进流程"}
    done = client.post(f"/admin/v1/rectifications/{listed[0]['id']}/response", json=answer, headers=officer)
    assert done.status_code == 200, done.get_json()
    appeal = client.post(
        f"{url}/decision", json={"accept": False, "reason": "并未解决"}, headers=zhang["headers"]
    )
    assert appeal.status_code == 200, appeal.get_json()
    both = select(Evaluation, RectificationTask).join(
        RectificationTask, RectificationTask.evaluation_id == Evaluation.id
    )
    rating, task = db.session().execute(both).one()
    assert evaluations.appeal_reason_of(task, services.encryptor) == "并未解决"
    assert evaluations.reason_of(rating, services.encryptor) == "窗口让我跑了三次"
    appealed = client.get("/admin/v1/rectifications?status=appealed", headers=officer).get_json()["items"]
    assert [t["appeal_reason"] for t in appealed] == ["并未解决"]
