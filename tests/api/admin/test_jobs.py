from core.outbox import service as outbox
from core.outbox.models import DEAD, OutboxJob
from tests.domain.operators.factories import admin_headers, make_operator
from workers.jobs import execute_outbox_job


def dead_probe(db_session, *, fail="permanent", phone="13912345678"):
    """A system.probe job run through the worker until it is dead."""
    job = outbox.add(db_session, "system.probe", {"fail": fail, "phone": phone})
    db_session.commit()
    job_id = job.id
    assert execute_outbox_job(job_id) == DEAD
    return job_id


def test_dead_job_is_listed_with_its_reason_and_hidden_payload(app, client, db_session):
    job_id = dead_probe(db_session)
    outbox.add(db_session, "system.probe", {})
    db_session.commit()
    headers = admin_headers(client, make_operator(app, roles=("ops",)))
    resp = client.get("/admin/v1/jobs?status=dead", headers=headers)
    assert resp.status_code == 200
    jobs = resp.get_json()
    assert [j["id"] for j in jobs] == [job_id]
    assert jobs[0]["last_error"].startswith("permanent:") and jobs[0]["payload_keys"] == ["fail", "phone"]
    assert "13912345678" not in resp.get_data(as_text=True)
    assert len(client.get("/admin/v1/jobs", headers=headers).get_json()) == 2
    one = client.get(f"/admin/v1/jobs/{job_id}", headers=headers)
    assert one.status_code == 200 and one.get_json()["status"] == "dead"


def test_replay_puts_a_dead_job_back_and_it_runs_again(app, client, db_session):
    job_id = dead_probe(db_session)
    # The cause is fixed (here: the payload no longer asks to fail), then the operator replays.
    job = db_session.get(OutboxJob, job_id)
    job.payload = {}
    db_session.commit()
    headers = admin_headers(client, make_operator(app, roles=("ops",)))
    resp = client.post(f"/admin/v1/jobs/{job_id}/replay", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "pending" and resp.get_json()["attempts"] == 0
    assert execute_outbox_job(job_id) == "succeeded"
    again = client.post(f"/admin/v1/jobs/{job_id}/replay", headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "admin.job_not_dead"


def test_jobs_need_the_ops_role_and_known_ids(app, client, db_session):
    job_id = dead_probe(db_session)
    admin = admin_headers(client, make_operator(app, roles=("admin",)))
    denied = client.post(f"/admin/v1/jobs/{job_id}/replay", headers=admin)
    assert denied.status_code == 403 and denied.get_json()["error"]["details"] == {"role": "ops"}
    assert db_session.get(OutboxJob, job_id).status == DEAD
    ops = admin_headers(client, make_operator(app, username="olga", roles=("ops",)))
    assert client.get("/admin/v1/jobs/nope", headers=ops).status_code == 404
    assert client.post("/admin/v1/jobs/nope/replay", headers=ops).status_code == 404
    bad = client.get("/admin/v1/jobs?status=zombie", headers=ops)
    assert bad.status_code == 422 and "status" in bad.get_json()["error"]["fields"]
