"""The phone number on file is told by SMS that the account was closed, so a citizen whose
account someone else closed (holding their phone) learns of it; the job keeps the number
encrypted only until the message is sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db import db
from core.outbox.models import DEAD, SUCCEEDED, OutboxJob
from tests.api.v1.identity.conftest import mini_citizen, wx  # noqa: F401 - fixtures
from tests.api.v1.test_account_closure import close
from tests.conftest import make_citizen
from workers.jobs import execute_outbox_job

PHONE = "13912340066"


@pytest.fixture
def sim(sms_sim: Any) -> Any:
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


def closure_jobs() -> list[OutboxJob]:
    session = db.session()
    session.rollback()
    session.expire_all()
    jobs = session.scalars(
        select(OutboxJob).where(OutboxJob.name == "sms.send").order_by(OutboxJob.created_at)
    )
    return [j for j in jobs if j.payload.get("template") == "account_closed"]


def messages(sim: Any, phone: str) -> list[dict]:
    return httpx.get(sim.url + "_sim/messages", params={"phone": phone}).json()["messages"]


def test_the_phone_on_file_is_told_of_the_closure_and_the_job_forgets_it(
    app: Any, client: Any, sim: Any
) -> None:
    who = make_citizen(app, phone=PHONE)
    assert close(client, who).status_code == 200
    [job] = closure_jobs()
    assert PHONE not in str(job.payload) and PHONE[-4:] not in str(job.payload)  # encrypted
    assert job.payload.get("_scrub") == ["data"]
    assert execute_outbox_job(job.id) == SUCCEEDED
    [sms] = messages(sim, PHONE)
    assert "注销" in sms["content"]
    [job] = closure_jobs()
    assert job.status == SUCCEEDED and "data" not in job.payload  # the number is gone once sent


def test_a_refused_closure_sends_nothing(app: Any, client: Any, sim: Any) -> None:
    who = make_citizen(app, phone=PHONE)
    made = client.post(
        "/v1/complaints", json={"kind": "complaint", "category": "efficiency", "text": "窗口排队太久"},
        headers=who["headers"],
    )  # fmt: skip
    assert made.status_code == 201
    assert close(client, who).status_code == 409
    assert closure_jobs() == []


def test_an_account_without_a_phone_gets_no_sms(app: Any, client: Any, sim: Any, wx: Any) -> None:  # noqa: F811
    first = mini_citizen(client, wx)
    assert close(client, first).status_code == 200
    assert closure_jobs() == []


def test_a_provider_refusal_ends_the_job_dead_and_keeps_no_number_in_its_error(
    app: Any, client: Any, sim: Any
) -> None:
    template = app.config["SMS_TEMPLATE_ACCOUNT_CLOSED"]
    httpx.put(sim.url + f"_sim/templates/{template}", json={"approved": False}).raise_for_status()
    who = make_citizen(app, phone=PHONE)
    assert close(client, who).status_code == 200
    [job] = closure_jobs()
    assert execute_outbox_job(job.id) == DEAD
    [job] = closure_jobs()
    assert PHONE not in (job.last_error or "") and messages(sim, PHONE) == []


def test_the_closure_sms_outlasts_the_providers_hour_limit_on_the_number(
    app: Any, client: Any, sim: Any, clock: Any
) -> None:
    """The closure needs a fresh SMS login, so the number may just have reached the provider's
    per-hour limit: the message is retried for at least an hour (not given up within minutes,
    the citizen never told) and then goes out."""
    from core.outbox.service import outbox

    limit = "LimitExceeded.PhoneNumberOneHourLimit"
    httpx.post(sim.url + "_sim/faults", json={"errors": [limit] * 200}).raise_for_status()
    who = make_citizen(app, phone=PHONE)
    assert close(client, who).status_code == 200
    [job] = closure_jobs()
    started, state = clock.time(), None
    while state != DEAD:
        state = execute_outbox_job(job.id)
        [job] = closure_jobs()
        if state != DEAD:
            clock.advance(max(1.0, job.next_attempt_at.timestamp() - clock.time()))
    assert clock.time() - started >= 3600, (clock.time() - started, job.attempts)
    assert job.attempts > outbox.settings.max_attempts
    # Refused more times than a job is tried by default, the message still goes out.
    httpx.post(sim.url + "_sim/reset").raise_for_status()
    httpx.post(sim.url + "_sim/faults", json={"errors": [limit] * 9}).raise_for_status()
    other = make_citizen(app, phone="13912340067")
    assert close(client, other).status_code == 200
    job = next(j for j in closure_jobs() if j.status != DEAD)
    while (state := execute_outbox_job(job.id)) != SUCCEEDED:
        assert state != DEAD, state
        job = next(j for j in closure_jobs() if j.id == job.id)
        clock.advance(max(1.0, job.next_attempt_at.timestamp() - clock.time()))
    [sms] = messages(sim, "13912340067")
    assert "注销" in sms["content"]
