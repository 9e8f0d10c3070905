import json
from datetime import timedelta

from sqlalchemy import select

from core.audit import AuditEvent
from core.clock import BEIJING
from core.db import db
from tests.domain.operators.factories import admin_headers, login, make_operator


def request_events():
    session = db.session()
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.request")))


def test_every_admin_request_leaves_an_audit_row_even_when_denied(app, client):
    auditor = make_operator(app, username="audrey", roles=("auditor",))
    headers = admin_headers(client, auditor)
    client.get("/admin/v1/me?full=13912345678", headers=headers)
    client.post("/admin/v1/operators", json={"username": "x"}, headers=headers)
    client.get("/admin/v1/me")
    client.get("/admin/v1/nothing-here", headers=headers)
    rows = {(e.details["method"], e.details["path"]): e for e in request_events()}
    login_row = rows[("POST", "/admin/v1/auth/login")]
    assert (
        login_row.actor_id == auditor["id"]
        and login_row.outcome == "ok"
        and login_row.details["status"] == 200
    )
    me = [e for e in request_events() if e.details["path"] == "/admin/v1/me" and e.details["status"] == 200]
    assert len(me) == 1 and me[0].details["query_keys"] == ["full"] and me[0].actor_id == auditor["id"]
    denied = rows[("POST", "/admin/v1/operators")]
    assert (denied.actor_id, denied.outcome, denied.details["status"]) == (auditor["id"], "denied", 403)
    assert denied.request_id and denied.ip
    assert rows[("GET", "/admin/v1/nothing-here")].details["status"] == 404
    anonymous = [e for e in request_events() if e.details["status"] == 401]
    assert len(anonymous) == 1 and anonymous[0].actor_id is None
    text = repr([e.details for e in request_events()])
    assert "13912345678" not in text


def test_a_failed_login_is_audited_without_its_secrets(app, client):
    op = make_operator(app)
    login(client, op, password="the wrong password")
    rows = request_events()
    assert [(e.details["path"], e.outcome) for e in rows] == [("/admin/v1/auth/login", "denied")]
    logins = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "admin.login")).all()
    assert [(e.actor_id, e.outcome, e.details["reason"]) for e in logins] == [
        (op["id"], "failed", "bad_password")
    ]
    assert "the wrong password" not in repr([(e.details, e.target_id) for e in rows + logins])


def test_business_actions_are_audited_with_their_target(app, client):
    alice = make_operator(app)
    headers = admin_headers(client, alice)
    created = client.post(
        "/admin/v1/operators",
        json={"username": "bob", "display_name": "Bob", "password": "a sturdy passphrase", "roles": ["ops"]},
        headers=headers,
    ).get_json()["operator"]
    event = db.session().scalar(
        select(AuditEvent).where(
            AuditEvent.action == "operator.create", AuditEvent.target_id == created["id"]
        )
    )
    assert (event.actor_type, event.actor_id, event.target_id) == ("operator", alice["id"], created["id"])
    assert "a sturdy passphrase" not in repr(event.details)


def test_auditor_filters_and_pages_the_trail(app, client, clock):
    alice = make_operator(app)
    audrey = make_operator(app, username="audrey", roles=("auditor",))
    alice_headers = admin_headers(client, alice)
    for _ in range(3):
        client.get("/admin/v1/me", headers=alice_headers)
    clock.advance(60)
    since = clock.now().isoformat()
    client.get("/admin/v1/me", headers=alice_headers)
    headers = admin_headers(client, audrey)

    page = client.get(
        f"/admin/v1/audit?actor_id={alice['id']}&action=admin.request&page_size=2", headers=headers
    )
    assert page.status_code == 200, page.get_json()
    assert len(page.get_json()) == 2
    pagination = json.loads(page.headers["X-Pagination"])
    assert pagination["total"] == 5 and pagination["total_pages"] == 3  # login + 4 x /me
    assert all(e["actor_id"] == alice["id"] for e in page.get_json())

    recent = client.get(
        "/admin/v1/audit",
        query_string={"actor_id": alice["id"], "action": "admin.request", "since": since},
        headers=headers,
    ).get_json()
    assert [e["details"]["path"] for e in recent] == ["/admin/v1/me"]

    by_target = client.get(f"/admin/v1/audit?target_id={alice['id']}&action=admin.login", headers=headers)
    assert [e["outcome"] for e in by_target.get_json()] == ["ok"]


def test_audit_needs_the_auditor_role_and_valid_filters(app, client):
    headers = admin_headers(client, make_operator(app, roles=("admin", "ops")))
    resp = client.get("/admin/v1/audit", headers=headers)
    assert resp.status_code == 403 and resp.get_json()["error"]["details"] == {"role": "auditor"}
    auditor = admin_headers(client, make_operator(app, username="audrey", roles=("auditor",)))
    bad = client.get("/admin/v1/audit?since=yesterday", headers=auditor)
    assert bad.status_code == 422 and "since" in bad.get_json()["error"]["fields"]
    # Instants at the calendar's ends cannot be converted to UTC (was a 500).
    for edge in ("0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-05:00"):
        far = client.get(f"/admin/v1/audit?since={edge}", headers=auditor)
        assert far.status_code == 422, far.get_json()
        assert far.get_json()["error"]["fields"]["since"] == ["年份须在 1970 至 9000 之间"]
    beyond = client.get("/admin/v1/audit?page=200000000000000000", headers=auditor)
    assert beyond.status_code == 200 and beyond.get_json() == []  # a page past the end is empty


def test_a_failed_business_transaction_keeps_its_audit_row(app, client):
    alice = make_operator(app)
    headers = admin_headers(client, alice)
    resp = client.patch(f"/admin/v1/operators/{alice['id']}", json={"status": "disabled"}, headers=headers)
    assert resp.status_code == 409
    rows = [e for e in request_events() if e.details["method"] == "PATCH"]
    assert [(e.actor_id, e.outcome, e.details["status"]) for e in rows] == [(alice["id"], "rejected", 409)]
    assert db.session().scalar(select(AuditEvent).where(AuditEvent.action == "operator.update")) is None


def test_paging_on_from_the_last_event_shown_repeats_nothing(app, client, clock):
    alice = make_operator(app)
    alice_headers = admin_headers(client, alice)
    for _ in range(4):
        clock.advance(1)
        client.get("/admin/v1/me", headers=alice_headers)
    auditor = admin_headers(client, make_operator(app, username="audrey", roles=("auditor",)))
    clock.advance(1)  # the paging's own events come after everything it pages through
    first = client.get("/admin/v1/audit?page_size=3", headers=auditor).get_json()
    # Reading the trail is itself audited: each request adds an event on top of the list.
    ids = [e["id"] for e in first]
    seen = list(ids)
    for _ in range(20):  # about a dozen events: a page that never ends is a failure, not a hang
        clock.advance(1)  # each request's own event is the newest
        page = client.get(f"/admin/v1/audit?page_size=3&before={ids[-1]}", headers=auditor)
        assert page.status_code == 200, page.get_json()
        ids = [e["id"] for e in page.get_json()]
        if not ids:
            break
        seen += ids
    assert not ids, "paging never reached the end"
    assert len(seen) == len(set(seen))
    everything = client.get("/admin/v1/audit?page_size=200", headers=auditor).get_json()
    # The full list now: the pages' events in the same order, after the paging's own events.
    assert [e["id"] for e in everything][-len(seen) :] == seen
    unknown = client.get("/admin/v1/audit?before=no-such-event", headers=auditor | {"Accept-Language": "en"})
    assert unknown.status_code == 422, unknown.get_json()
    assert unknown.get_json()["error"]["code"] == "admin.audit_cursor_unknown"
    assert "before" in unknown.get_json()["error"]["fields"]


def test_a_since_without_a_zone_is_beijing_time(app, client, clock):
    alice = make_operator(app)
    alice_headers = admin_headers(client, alice)
    clock.advance(60)
    client.get("/admin/v1/me", headers=alice_headers)  # the event to find
    auditor = admin_headers(client, make_operator(app, username="audrey", roles=("auditor",)))
    wall = (clock.now() - timedelta(seconds=30)).astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S")
    found = client.get(
        "/admin/v1/audit", query_string={"actor_id": alice["id"], "action": "admin.request", "since": wall},
        headers=auditor,
    ).get_json()  # fmt: skip
    assert [e["details"]["path"] for e in found] == ["/admin/v1/me"]
