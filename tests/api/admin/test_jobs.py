from datetime import timedelta

from core import clock
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
    page = resp.get_json()
    jobs = page["items"]
    assert [j["id"] for j in jobs] == [job_id] and page["next_cursor"] is None
    assert jobs[0]["last_error"].startswith("permanent:") and jobs[0]["payload_keys"] == ["fail", "phone"]
    assert "13912345678" not in resp.get_data(as_text=True)
    assert len(client.get("/admin/v1/jobs", headers=headers).get_json()["items"]) == 2
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


def _jobs_at_one_instant(db_session, count: int) -> list[str]:
    """`count` jobs written in the same instant (the order needs its tie-break); ids newest first."""
    at = clock.now() + timedelta(seconds=1)
    rows = [outbox.add(db_session, "system.probe", {"n": n}) for n in range(count)]
    for row in rows:
        row.created_at = at
    db_session.commit()
    return sorted((row.id for row in rows), reverse=True)


def test_the_jobs_list_pages_past_the_first_fifty(app, client, db_session):
    older = outbox.add(db_session, "system.probe", {})
    db_session.commit()
    ids = _jobs_at_one_instant(db_session, 70) + [older.id]
    ops = admin_headers(client, make_operator(app, roles=("ops",)))
    first = client.get("/admin/v1/jobs", headers=ops).get_json()
    assert len(first["items"]) == 50 and first["next_cursor"]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 30} | ({"cursor": cursor} if cursor else {})
        page = client.get("/admin/v1/jobs", query_string=query, headers=ops)
        assert page.status_code == 200, page.get_json()
        seen += [job["id"] for job in page.get_json()["items"]]
        cursor, pages = page.get_json()["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 3 and seen == ids  # all 71, none twice, newest first then by id


def test_dead_jobs_page_by_cursor_and_a_new_job_does_not_shift_them(app, client, db_session):
    dead = sorted((dead_probe(db_session) for _ in range(3)), reverse=True)
    for job_id in dead:  # one instant, so the id breaks the tie; a minute before the next one
        db_session.get(OutboxJob, job_id).created_at = clock.now() - timedelta(minutes=1)
    db_session.commit()
    ops = admin_headers(client, make_operator(app, roles=("ops",)))
    first = client.get("/admin/v1/jobs", query_string={"status": "dead", "limit": 2}, headers=ops).get_json()
    assert [job["id"] for job in first["items"]] == dead[:2]
    dead_probe(db_session)  # a newer dead letter arrives meanwhile
    query = {"status": "dead", "limit": 2, "cursor": first["next_cursor"]}
    rest = client.get("/admin/v1/jobs", query_string=query, headers=ops).get_json()
    assert [job["id"] for job in rest["items"]] == dead[2:] and rest["next_cursor"] is None


def test_a_bad_job_cursor_or_limit_is_a_clear_error(app, client, db_session):
    ops = admin_headers(client, make_operator(app, roles=("ops",)))
    naive = "WyIyMDI2LTEyLTA2VDAwOjAwOjAwIiwiYWJjIl0"  # a naive time and an id that cannot be one
    for cursor in ("garbage", "WyJ4Il0", naive, "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwiYWJjIl0"):
        resp = client.get("/admin/v1/jobs", query_string={"cursor": cursor}, headers=ops)
        assert resp.status_code == 400, (cursor, resp.get_json())
        assert resp.get_json()["error"]["code"] == "jobs.bad_cursor"
        assert resp.get_json()["error"]["message"] == "分页游标无效，请从第一页重新加载"
    en = client.get(
        "/admin/v1/jobs", query_string={"cursor": "garbage"}, headers=ops | {"Accept-Language": "en"}
    )
    assert en.get_json()["error"]["message"].startswith("The page cursor is invalid")
    for limit in (0, 201):
        assert client.get("/admin/v1/jobs", query_string={"limit": limit}, headers=ops).status_code == 422
