"""Dead jobs keep the personal data their payload names in `_scrub` only for a replay, and only
for OUTBOX_DEAD_SCRUB_DAYS after they died: then the sweeper erases it, and a replay is refused
with a clear 409 instead of being accepted and failing on a payload that is gone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db import db
from core.outbox import service as outbox
from core.outbox import sweeper as outbox_sweeper
from core.outbox.models import DEAD, PENDING, SUCCEEDED, OutboxJob
from tests.domain.operators.factories import admin_headers, make_operator
from workers import sweeper
from workers.jobs import execute_outbox_job

DAY = 86400
EN = {"Accept-Language": "en"}


@pytest.fixture
def sim(sms_sim: Any) -> Any:
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


def _sweep(app: Any, monkeypatch: Any) -> dict:
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        return sweeper.run_once(0)


def _job(job_id: str) -> OutboxJob:
    session = db.session()
    session.rollback()
    session.expire_all()
    job = session.get(OutboxJob, job_id)
    assert job is not None
    return job


def _dead_sms(client: Any, phone: str) -> str:
    """An SMS login code the provider refuses (template not approved): the job ends dead."""
    resp = client.post("/v1/auth/sms/send", json={"phone": phone}, environ_base={"REMOTE_ADDR": "10.20.0.7"})
    assert resp.status_code == 202, resp.get_json()
    session = db.session()
    session.expire_all()
    job_id = session.scalars(
        select(OutboxJob.id).where(OutboxJob.name == "sms.send").order_by(OutboxJob.created_at.desc())
    ).first()
    assert execute_outbox_job(job_id) == DEAD
    return job_id


def _refuse_template(app: Any, sim: Any, approved: bool = False) -> None:
    otp = app.config["SMS_TEMPLATE_OTP"]
    httpx.put(sim.url + f"_sim/templates/{otp}", json={"approved": approved}).raise_for_status()


def test_a_dead_sms_job_past_the_period_loses_its_data_and_a_younger_one_keeps_it(
    app: Any, client: Any, sim: Any, clock: Any, monkeypatch: Any
) -> None:
    assert app.config["OUTBOX_DEAD_SCRUB_DAYS"] == 7
    _refuse_template(app, sim)
    old = _dead_sms(client, "13912347001")
    clock.advance(6 * DAY)
    young = _dead_sms(client, "13912347002")
    assert "data" in _job(old).payload and _job(old).payload["_scrub"] == ["data"]
    clock.advance(DAY + 60)  # the old one died 7 days and a minute ago, the young one a day ago

    done = _sweep(app, monkeypatch)

    assert done["dead_jobs_scrubbed"] == 1
    gone = _job(old)
    assert gone.status == DEAD
    assert "data" not in gone.payload and "_scrub" not in gone.payload
    assert gone.payload["_scrubbed_at"]  # when, for the operator
    assert gone.payload["template"] == "otp" and gone.payload["challenge_id"]  # ids stay
    kept = _job(young)
    assert (
        kept.payload["_scrub"] == ["data"] and "data" in kept.payload and "_scrubbed_at" not in kept.payload
    )
    # The next pass has nothing left to do.
    assert _sweep(app, monkeypatch)["dead_jobs_scrubbed"] == 0

    # The young one is still replayable, and with the template approved it is delivered.
    _refuse_template(app, sim, approved=True)
    ops = admin_headers(client, make_operator(app, roles=("ops",)))
    resp = client.post(f"/admin/v1/jobs/{young}/replay", headers=ops)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == PENDING and resp.get_json()["data_erased_at"] is None
    assert execute_outbox_job(young) == SUCCEEDED


def test_replaying_a_scrubbed_job_is_refused_and_the_admin_view_says_it_was_erased(
    app: Any, client: Any, sim: Any, clock: Any, monkeypatch: Any
) -> None:
    _refuse_template(app, sim)
    job_id = _dead_sms(client, "13912347003")
    clock.advance(7 * DAY + 60)
    assert _sweep(app, monkeypatch)["dead_jobs_scrubbed"] == 1
    ops = admin_headers(client, make_operator(app, roles=("ops",)))

    refused = client.post(f"/admin/v1/jobs/{job_id}/replay", headers=ops)
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "jobs.data_erased"
    assert error["message"] == "该任务中的个人信息已按保存期限删除，无法重发"
    english = client.post(f"/admin/v1/jobs/{job_id}/replay", headers=ops | EN)
    assert english.status_code == 409 and english.get_json()["error"]["code"] == "jobs.data_erased"
    assert "erased" in english.get_json()["error"]["message"]
    assert _job(job_id).status == DEAD and _job(job_id).attempts == 1  # nothing changed

    view = client.get(f"/admin/v1/jobs/{job_id}", headers=ops)
    assert view.status_code == 200
    body = view.get_json()
    assert body["data_erased_at"] is not None and body["status"] == "dead"
    assert "data" not in body["payload_keys"] and "_scrub" not in body["payload_keys"]
    listed = client.get("/admin/v1/jobs?status=dead", headers=ops).get_json()["items"]
    assert [j["data_erased_at"] is not None for j in listed] == [True]


def test_other_jobs_are_left_as_they_are(app: Any, client: Any, clock: Any, monkeypatch: Any) -> None:
    """A dead job naming nothing to scrub stays replayable however old; a succeeded one (even one
    whose named key never came) and one still retrying are not touched."""
    monkeypatch.setitem(app.config, "OUTBOX_DEAD_SCRUB_DAYS", 3)
    session = db.session()
    plain = outbox.add(session, "system.probe", {"fail": "permanent", "note": "n"})
    done = outbox.add(session, "system.probe", {"keep": 1, "_scrub": ["absent"]})
    waiting = outbox.add(session, "system.probe", {"fail": "retryable", "secret": "s", "_scrub": ["secret"]})
    session.commit()
    ids = plain.id, done.id, waiting.id
    assert [execute_outbox_job(i) for i in ids] == [DEAD, SUCCEEDED, "retrying"]
    before = {i: dict(_job(i).payload) for i in ids}
    clock.advance(4 * DAY)

    assert _sweep(app, monkeypatch)["dead_jobs_scrubbed"] == 0

    assert {i: _job(i).payload for i in ids} == before
    ops = admin_headers(client, make_operator(app, roles=("ops",)))
    assert client.post(f"/admin/v1/jobs/{plain.id}/replay", headers=ops).status_code == 200


def test_a_backlog_is_scrubbed_in_bounded_batches_over_several_passes(
    app: Any, client: Any, clock: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(outbox_sweeper, "SCRUB_BATCH", 2)
    monkeypatch.setattr(outbox_sweeper, "SCRUB_BATCHES", 2)
    seen: list[str] = []
    real = outbox_sweeper.in_batches

    def spying(session: Any, ids: Any, work: Any, **kw: Any) -> int:
        return real(session, ids, lambda chosen: (seen.extend(chosen), work(chosen))[1], **kw)

    monkeypatch.setattr(outbox_sweeper, "in_batches", spying)
    session = db.session()
    jobs = [
        outbox.add(session, "system.probe", {"fail": "permanent", "secret": f"s{n}", "_scrub": ["secret"]})
        for n in range(5)
    ]
    session.commit()
    ids = [job.id for job in jobs]
    assert [execute_outbox_job(i) for i in ids] == [DEAD] * 5
    clock.advance(8 * DAY)

    counts = [_sweep(app, monkeypatch)["dead_jobs_scrubbed"] for _ in range(3)]

    assert counts == [4, 1, 0]  # at most 2 batches of 2 a pass; the rest the next pass
    assert sorted(seen) == sorted(ids)  # each read once: done rows are never selected again
    for job_id in ids:
        payload = _job(job_id).payload
        assert "secret" not in payload and "_scrub" not in payload and payload["_scrubbed_at"]


def test_a_scrubbed_job_cannot_be_put_back_nor_run_by_the_outbox_itself(app: Any, clock: Any) -> None:
    """Below the operators' check: the outbox's own replay refuses it (the check is in the same
    conditional update, so a scrub committed after the operator read the job is not missed), and a
    worker handed one anyway ends it dead without calling its handler."""
    session = db.session()
    job = outbox.add(session, "system.probe", {"fail": "permanent", "secret": "s", "_scrub": ["secret"]})
    session.commit()
    job_id = job.id
    assert execute_outbox_job(job_id) == DEAD
    clock.advance(8 * DAY)
    assert outbox_sweeper.scrub_dead(db.session(), days=7) == 1

    session = db.session()
    assert outbox.replay(session, job_id) is None
    session.commit()
    assert _job(job_id).status == DEAD and _job(job_id).attempts == 1

    forced = _job(job_id)
    forced.status = PENDING  # as if let through some other way
    db.session().commit()
    assert execute_outbox_job(job_id) == DEAD
    assert _job(job_id).last_error == "personal data erased: cannot run again"
    assert _job(job_id).attempts == 2
