"""The outbox end to end: same-transaction writes, RQ delivery, retries, dead jobs, recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from core.outbox import service as outbox_service
from core.outbox.models import DEAD, PENDING, RETRYING, RUNNING, SUCCEEDED, OutboxJob
from core.outbox.service import outbox
from core.outbox.sweeper import sweep
from core.redis import get_redis

ROOT = Path(__file__).resolve().parents[2]


def run_worker() -> None:
    """Drain the queue in this process, as a worker host would."""
    SimpleWorker([outbox.queue()], connection=get_redis()).work(burst=True, with_scheduler=False)


def job_state(db_session, job_id):
    db_session.expire_all()
    return db_session.get(OutboxJob, job_id)


def add_probe(db_session, **payload):
    job = outbox_service.add(db_session, "system.probe", payload)
    db_session.commit()
    return job.id


def test_job_written_in_a_rolled_back_transaction_never_runs(app, db_session):
    outbox_service.add(db_session, "system.probe", {})
    db_session.rollback()
    assert db_session.scalars(select(OutboxJob)).all() == []
    assert outbox.queue().count == 0


def test_committed_job_is_enqueued_and_ends_succeeded(app, db_session):
    job_id = add_probe(db_session)
    assert outbox.queue().count == 1
    run_worker()
    job = job_state(db_session, job_id)
    assert job.status == SUCCEEDED and job.attempts == 1 and job.finished_at is not None


def test_retryable_failure_backs_off_then_goes_dead_with_reason(app, db_session, clock):
    job = outbox_service.add(db_session, "system.probe", {"fail": "retryable"}, max_attempts=3)
    db_session.commit()
    delays = []
    for attempt in range(1, 4):
        run_worker()
        state = job_state(db_session, job.id)
        assert state.attempts == attempt
        if attempt < 3:
            assert state.status == RETRYING
            delay = (state.next_attempt_at - clock.now()).total_seconds()
            delays.append(delay)
            # Not due yet: a sweep enqueues nothing.
            assert sweep(db_session, outbox).enqueued == 0
            clock.advance(delay + 0.01)
            assert sweep(db_session, outbox).enqueued == 1
    final = job_state(db_session, job.id)
    assert final.status == DEAD
    assert "attempts exhausted" in final.last_error and "retryable" in final.last_error
    # Exponential with jitter: attempt n waits between base*2^(n-1)/2 and base*2^(n-1).
    assert 1.0 <= delays[0] <= 2.0 and 2.0 <= delays[1] <= 4.0


def test_backoff_is_capped():
    settings = outbox_service.OutboxSettings(backoff_base=2, backoff_cap=600)
    assert outbox_service.backoff_seconds(30, settings, 0.999) <= 600
    assert outbox_service.backoff_seconds(30, settings, 0.0) == 300


def test_permanent_failure_is_dead_at_once_and_replayable(app, db_session):
    job_id = add_probe(db_session, fail="permanent")
    run_worker()
    job = job_state(db_session, job_id)
    assert job.status == DEAD and job.attempts == 1 and job.last_error.startswith("permanent:")
    assert [j.id for j in outbox_service.list_jobs(db_session, status=DEAD)] == [job_id]
    # An operator fixes the cause and replays it.
    job.payload = {}
    assert outbox_service.replay(db_session, job_id) is not None
    db_session.commit()
    run_worker()
    assert job_state(db_session, job_id).status == SUCCEEDED


def test_unknown_job_name_ends_dead(app, db_session):
    job = outbox_service.add(db_session, "no.such.job", {})
    db_session.commit()
    run_worker()
    state = job_state(db_session, job.id)
    assert state.status == DEAD and "no handler" in state.last_error


def test_duplicate_delivery_runs_the_job_once(app, db_session):
    job_id = add_probe(db_session)
    outbox.enqueue_ids([job_id])  # e.g. the sweeper re-enqueued while it was still queued
    run_worker()
    assert job_state(db_session, job_id).attempts == 1


def test_flushing_redis_loses_no_job(app, db_session, clock):
    job_id = add_probe(db_session)
    get_redis().flushdb()  # this test's database only: FLUSHALL would empty every database on the server
    run_worker()  # nothing to do: the queue is gone
    assert job_state(db_session, job_id).status == PENDING
    assert sweep(db_session, outbox).enqueued == 0  # not stale yet
    clock.advance(outbox.settings.enqueue_timeout + 1)
    assert sweep(db_session, outbox).enqueued == 1
    run_worker()
    assert job_state(db_session, job_id).status == SUCCEEDED


def _worker_env(app) -> dict:
    env = dict(os.environ)
    env.update(
        YIWANG_ENV="test",
        DATABASE_URL=app.config["DATABASE_URL"],
        REDIS_URL=app.config["REDIS_URL_RESOLVED"],
        YIWANG_INSTANCE_DIR=str(app.config["INSTANCE_DIR"]),
        LOG_LEVEL="WARNING",
    )
    return env


@pytest.mark.timeout(90)
def test_job_survives_a_killed_worker(app, db_session, clock, tmp_path):
    marker = tmp_path / "probe-started"
    job_id = add_probe(db_session, sleep=30, marker=str(marker))
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers.rq_worker"], cwd=ROOT, env=_worker_env(app), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not marker.exists():
            time.sleep(0.1)
        assert marker.exists(), "worker did not start the job"
        assert job_state(db_session, job_id).status == RUNNING
        os.killpg(worker.pid, signal.SIGKILL)  # the host dies mid-job
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    stuck = job_state(db_session, job_id)
    assert stuck.status == RUNNING  # nobody finished it
    assert sweep(db_session, outbox).recovered == 0  # its lock has not expired yet
    # The worker took its lock on the wall clock; move the frozen clock just past it.
    clock.advance((stuck.locked_until - clock.now()).total_seconds() + 1)
    report = sweep(db_session, outbox)
    assert report.recovered == 1 and report.enqueued == 1
    state = job_state(db_session, job_id)
    assert state.status == RETRYING and "worker lost" in state.last_error
    run_worker()
    final = job_state(db_session, job_id)
    assert final.status == SUCCEEDED and final.attempts == 2


def test_a_run_whose_lock_expired_cannot_finish_over_the_next_run(app, db_session, clock):
    from core.outbox import dispatcher

    job_id = add_probe(db_session)
    assert dispatcher._claim(db_session, job_id, outbox.settings)  # worker A, then it stalls
    clock.advance(outbox.settings.run_timeout + 1)
    assert sweep(db_session, outbox).recovered == 1
    assert dispatcher._claim(db_session, job_id, outbox.settings)  # worker B takes it over
    assert dispatcher._finish(db_session, job_id, 1, SUCCEEDED) == "superseded"  # A wakes up
    state = job_state(db_session, job_id)
    assert state.status == RUNNING and state.attempts == 2  # B's run is untouched
    assert dispatcher._finish(db_session, job_id, 2, SUCCEEDED) == SUCCEEDED


def test_scrubbed_payload_keys_are_erased_after_success_only(app, db_session):
    ok = outbox_service.add(db_session, "system.probe", {"secret": "x", "keep": 1, "_scrub": ["secret"]})
    bad = outbox_service.add(
        db_session, "system.probe", {"secret": "y", "fail": "permanent", "_scrub": ["secret"]}
    )
    db_session.commit()
    run_worker()
    done, dead = job_state(db_session, ok.id), job_state(db_session, bad.id)
    assert done.status == SUCCEEDED and done.payload == {"keep": 1}
    assert dead.status == DEAD and dead.payload["secret"] == "y"  # kept for a replay
