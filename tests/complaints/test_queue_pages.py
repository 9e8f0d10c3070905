"""The operators' complaint queue in pages: every waiting complaint reachable, each once, in order."""

from __future__ import annotations

from typing import Any

from core import clock
from core.db import db
from domain.complaints.models import Complaint
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator

QUEUE = "/admin/v1/complaints"


def _waiting(app: Any, count: int) -> list[str]:
    """`count` waiting complaints, all filed in the same instant (the order needs its tie-break)."""
    who = make_citizen(app)
    now = clock.now()
    session = db.session()
    rows = [
        Complaint(tracking_no=f"TS20261206{n:05d}", account_id=who["account_id"], kind="complaint",
                  category="efficiency", text_enc="v1.x.y", attachments=[], status="submitted",
                  created_at=now, updated_at=now)
        for n in range(count)
    ]  # fmt: skip
    session.add_all(rows)
    session.commit()
    return sorted(row.id for row in rows)


def test_the_complaint_queue_pages_past_the_first_hundred(app: Any, client: Any) -> None:
    ids = _waiting(app, 130)
    operator = admin_headers(client, make_operator(app, username="hotline-1", roles=("case_operator",)))
    first = client.get(QUEUE, headers=operator).get_json()
    assert len(first["items"]) == 50 and first["next_cursor"]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        page = client.get(QUEUE, query_string=query, headers=operator)
        assert page.status_code == 200, page.get_json()
        seen += [item["id"] for item in page.get_json()["items"]]
        cursor, pages = page.get_json()["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 2 and seen == ids  # all 130, none twice, oldest first then by id


def test_an_answered_complaint_leaves_the_queue_without_shifting_the_pages(app: Any, client: Any) -> None:
    ids = _waiting(app, 5)
    operator = admin_headers(client, make_operator(app, username="hotline-2", roles=("case_operator",)))
    first = client.get(QUEUE, query_string={"limit": 2}, headers=operator).get_json()
    assert [c["id"] for c in first["items"]] == ids[:2]
    answered = client.post(f"{QUEUE}/{ids[0]}/reply", json={"text": "已处理"}, headers=operator)
    assert answered.status_code == 200, answered.get_json()
    rest = client.get(QUEUE, query_string={"limit": 10, "cursor": first["next_cursor"]}, headers=operator)
    assert [c["id"] for c in rest.get_json()["items"]] == ids[2:] and rest.get_json()["next_cursor"] is None


def test_a_bad_cursor_or_limit_is_a_clear_error(app: Any, client: Any) -> None:
    operator = admin_headers(client, make_operator(app, username="hotline-3", roles=("case_operator",)))
    # Not base64 JSON; one part; a naive time and an id that cannot be one; far past the calendar.
    naive = "WyIyMDI2LTEyLTA2VDAwOjAwOjAwIiwiYWJjIl0"
    for cursor in ("garbage", "WyJ4Il0", naive, "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwiYWJjIl0"):
        resp = client.get(QUEUE, query_string={"cursor": cursor}, headers=operator)
        assert resp.status_code == 400, (cursor, resp.get_json())
        assert resp.get_json()["error"]["code"] == "complaints.bad_cursor"
    en = client.get(QUEUE, query_string={"cursor": "garbage"}, headers=operator | {"Accept-Language": "en"})
    assert en.get_json()["error"]["message"].startswith("The page cursor is invalid")
    assert client.get(QUEUE, query_string={"limit": 0}, headers=operator).status_code == 422
    assert client.get(QUEUE, query_string={"cursor": "\u0000" * 10}, headers=operator).status_code == 422
