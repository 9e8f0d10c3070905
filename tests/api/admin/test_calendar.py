"""The calendar admin API: overrides, the due-date checker, roles, errors and audit."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.audit import AuditEvent
from tests.domain.operators.factories import admin_headers, make_operator

URL = "/admin/v1/calendar"


def _editor(app, client, username="carol"):
    return admin_headers(client, make_operator(app, username=username, roles=("catalog_editor",)))


def test_due_date_across_spring_festival_lists_the_skipped_days(app, client):
    headers = _editor(app, client)
    resp = client.get(
        f"{URL}/due-date",
        query_string={"start": "2026-02-12", "value": 3, "region": "440100"},
        headers=headers,
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["due_date"] == "2026-02-24" and body["unit"] == "working_day"
    assert body["skipped"] == [f"2026-02-{d}" for d in range(15, 24)]
    assert body["last_statutory"] == "2026-12-31" and body["provisional"] is False


def test_an_override_added_through_the_api_moves_the_due_date_and_is_audited(app, client, db_session):
    headers = _editor(app, client)
    query = {"start": "2025-11-03", "value": 3, "region": "440100"}
    assert (
        client.get(f"{URL}/due-date", query_string=query, headers=headers).get_json()["due_date"]
        == "2025-11-06"
    )
    new = {"date": "2025-11-05", "region": "440100", "kind": "holiday", "reason": "城市纪念日"}
    created = client.post(f"{URL}/overrides", json=new, headers=headers)
    assert created.status_code == 201, created.get_json()
    override = created.get_json()
    assert override["date"] == "2025-11-05" and override["kind"] == "holiday"
    moved = client.get(f"{URL}/due-date", query_string=query, headers=headers).get_json()
    assert moved["due_date"] == "2025-11-07" and moved["skipped"] == ["2025-11-05"]

    listed = client.get(f"{URL}/overrides", query_string={"region": "440100", "year": 2025}, headers=headers)
    assert [o["id"] for o in listed.get_json()] == [override["id"]]
    assert client.get(f"{URL}/overrides", query_string={"year": 2024}, headers=headers).get_json() == []

    assert client.delete(f"{URL}/overrides/{override['id']}", headers=headers).status_code == 204
    back = client.get(f"{URL}/due-date", query_string=query, headers=headers).get_json()
    assert back["due_date"] == "2025-11-06"
    gone = client.delete(f"{URL}/overrides/{override['id']}", headers=headers)
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "calendar.override_not_found"

    db_session.rollback()
    events = db_session.execute(
        select(AuditEvent.action, AuditEvent.actor_id).where(AuditEvent.target_id == override["id"])
    ).all()
    editor_id = created.get_json()["created_by"]
    assert sorted(events) == [
        ("calendar.override.create", editor_id),
        ("calendar.override.delete", editor_id),
    ]


def test_duplicate_override_is_a_conflict(app, client):
    headers = _editor(app, client)
    new = {"date": "2025-11-05", "region": "440100", "kind": "holiday", "reason": "城市纪念日"}
    assert client.post(f"{URL}/overrides", json=new, headers=headers).status_code == 201
    again = client.post(f"{URL}/overrides", json={**new, "kind": "workday"}, headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "calendar.override_exists"


def test_invalid_input_is_a_4xx_in_the_one_error_format(app, client):
    headers = _editor(app, client)
    ok = {"date": "2025-11-05", "region": "440100", "kind": "holiday", "reason": "x"}
    cases = [
        ("post", {**ok, "region": "990100"}, "calendar.region_invalid"),
        ("post", {**ok, "kind": "half_day"}, "request.validation_failed"),
        ("post", {**ok, "date": "2025-02-30"}, "request.validation_failed"),
        ("post", {**ok, "extra": 1}, "request.validation_failed"),
        ("get", {"start": "2025-11-03", "value": 3, "region": "44010x"}, "calendar.region_invalid"),
        ("get", {"start": "2025-11-03", "value": -1, "region": "440100"}, "request.validation_failed"),
        (
            "get",
            {"start": "2025-11-03", "value": 3, "unit": "hour", "region": "440100"},
            "request.validation_failed",
        ),
        ("get", {"start": "2025-11-03", "value": 5000, "region": "440100"}, "calendar.time_limit_invalid"),
        ("get", {"start": "not-a-date", "value": 3, "region": "440100"}, "request.validation_failed"),
    ]
    for method, payload, code in cases:
        if method == "post":
            resp = client.post(f"{URL}/overrides", json=payload, headers=headers)
        else:
            resp = client.get(f"{URL}/due-date", query_string=payload, headers=headers)
        assert resp.status_code == 422, (payload, resp.get_json())
        error = resp.get_json()["error"]
        assert error["code"] == code, (payload, error)
        assert error["message"] and error["request_id"]


def test_beyond_the_known_years_is_provisional_then_a_clear_error(app, client):
    headers = _editor(app, client)
    resp = client.get(
        f"{URL}/due-date", query_string={"start": "2026-12-28", "value": 10, "region": "440100"},
        headers={**headers, "Accept-Language": "en"},
    )  # fmt: skip
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["provisional"] is True and body["last_statutory"] == "2026-12-31"
    assert body["due_date"] == "2027-01-12" and "2027-01-01" in body["skipped"]
    resp = client.get(
        f"{URL}/due-date", query_string={"start": "2027-12-28", "value": 10, "region": "440100"},
        headers={**headers, "Accept-Language": "en"},
    )  # fmt: skip
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "calendar.out_of_range"
    assert error["details"]["last_supported"] == "2027-12-31"
    assert "2027-12-31" in error["message"]


def test_other_roles_and_anonymous_callers_are_refused(app, client):
    auditor = admin_headers(client, make_operator(app, username="audrey", roles=("auditor",)))
    resp = client.get(f"{URL}/overrides", headers=auditor)
    assert resp.status_code == 403 and resp.get_json()["error"]["details"] == {"role": "catalog_editor"}
    new = {"date": "2025-11-05", "region": "440100", "kind": "holiday", "reason": "x"}
    assert client.post(f"{URL}/overrides", json=new, headers=auditor).status_code == 403
    assert client.post(f"{URL}/overrides", json=new).status_code == 401
    editor = _editor(app, client)
    assert client.get(f"{URL}/overrides", headers=editor).get_json() == []


def test_field_messages_are_chinese_by_default_and_english_on_request(app, client):
    """Every message of a refused calendar request speaks the operator's language: the domain's
    own checks (region, date range, reason, time limit) and the schema's (a 6-character region)."""
    han = re.compile(r"[\u4e00-\u9fff]")
    headers = _editor(app, client)
    ok = {"date": "2025-11-05", "region": "440100", "kind": "holiday", "reason": "城市纪念日"}
    due = {"start": "2025-11-03", "value": 3, "region": "440100"}
    cases = [
        ("post", "/overrides", {**ok, "region": "990100"}),
        ("post", "/overrides", {**ok, "region": "4401"}),
        ("post", "/overrides", {**ok, "date": "2040-02-03"}),
        ("post", "/overrides", {**ok, "reason": "   "}),
        ("get", "/overrides", {"region": "990000"}),
        ("get", "/due-date", {**due, "region": "44010x"}),
        ("get", "/due-date", {**due, "value": 5000}),
        ("get", "/due-date", {**due, "value": 400, "unit": "month"}),
    ]
    bad = []
    for method, path, payload in cases:
        for lang in ("zh", "en"):
            h = headers | ({"Accept-Language": "en"} if lang == "en" else {})
            if method == "post":
                resp = client.post(URL + path, json=payload, headers=h)
            else:
                resp = client.get(URL + path, query_string=payload, headers=h)
            assert resp.status_code == 422, (payload, resp.get_json())
            error = resp.get_json()["error"]
            assert error["fields"], (payload, error)
            texts = [error["message"], *[m for ms in error["fields"].values() for m in ms]]
            wrong = [t for t in texts if bool(han.search(t)) != (lang == "zh")]
            if wrong:
                bad.append((lang, path, payload, wrong))
    assert bad == []
