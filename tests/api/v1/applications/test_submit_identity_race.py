"""A submission judges the applicant's identity as it is once the application is locked."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from core.db import db
from domain.accounts.models import Account
from domain.applications.models import Application
from domain.identity import hall
from integrations.realname.people import DEMO_PEOPLE
from tests.api.v1.applications.conftest import SS_CARD, create, get, jpeg, patch, submit, upload
from tests.conftest import make_citizen

NAME, ID_NUMBER = DEMO_PEOPLE[0][0], DEMO_PEOPLE[0][1]


def _ready(client, who):
    """An SS card draft (the item needs L2) with everything a submission needs."""
    app = create(client, who, service_code=SS_CARD).get_json()
    app = patch(
        client, who, app, {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    ).get_json()
    for material in ("id_card", "insurance"):
        assert upload(client, who, app["id"], material, jpeg()).status_code == 201
    return get(client, who, app["id"]).get_json()


def _wait_for_lock_wait(app_id: str) -> None:
    """Until a backend waits for a row lock (the submission queued behind the blocker)."""
    deadline = time.monotonic() + 10
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError(f"the submission of {app_id} never waited for the application's lock")


def test_an_identity_displaced_while_the_submission_waits_for_the_application_is_not_used(
    app, client, seeded, idcheck_sim
):
    """The citizen proved the identity by name and number only (L2) and submits an item needing
    L2 while another request holds the application (an autosave, an upload). Meanwhile a hall
    officer checks the real person in person on another account: the identity moves there and
    this account drops to L1 (docs/identity.md, displace). The submission, once it has the
    application, is judged at L1: 422 with the identity problem, and nothing is submitted."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the submission holds it while it reads")
    holder = make_citizen(app)
    verified = client.post(
        "/v1/identity/verifications",
        json={"method": "id_check", "name": NAME, "id_number": ID_NUMBER},
        headers=holder["headers"],
    )
    assert verified.status_code == 201 and verified.get_json()["identity_level"] == "L2", verified.get_json()
    ready = _ready(client, holder)

    blocker = db.engine.connect()
    blocking = blocker.begin()
    blocker.execute(text("SELECT id FROM applications WHERE id = :id FOR UPDATE"), {"id": ready["id"]})
    answers: list = []
    worker = threading.Thread(target=lambda: answers.append(submit(app.test_client(), holder, ready)))
    worker.start()
    try:
        _wait_for_lock_wait(ready["id"])
        person = make_citizen(app)
        svc = app.extensions["yiwang"]
        moved = hall.record_in_person(
            db.session(), deps=svc.identity, operator_id="op-test", account_id=person["account_id"],
            name=NAME, id_number=ID_NUMBER, hall="天河区政务服务中心", request_id=None,
        )  # fmt: skip
        assert moved.identity_level == "L3"
        level = db.session().scalar(select(Account.identity_level).where(Account.id == holder["account_id"]))
        assert level == "L1"  # displaced, committed, while the submission still waits
    finally:
        blocking.rollback()
        blocker.close()
        worker.join(10)
    assert answers, "the submission did not answer"
    resp = answers[0]
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert "identity" in error["fields"], error
    assert error["details"]["identity"]["current_level"] == "L1", error
    db.session().rollback()
    status = db.session().scalar(select(Application.status).where(Application.id == ready["id"]))
    assert status == "draft"
