"""The in-app inbox: always written, newest first with a cursor, unread count, read marks."""

from __future__ import annotations

import base64
from typing import Any

from tests.conftest import make_citizen
from tests.notifications.conftest import notify


def test_inbox_pages_newest_first_with_unread_count(
    app: Any, client: Any, person: dict, daytime: Any
) -> None:
    made = []
    for i in range(5):
        made.append(notify(app, person, "case_accepted", case_number=f"YW2026120400{i:02d}"))
        daytime.advance(1)
    first = client.get("/v1/notifications?limit=2", headers=person["headers"]).get_json()
    assert [i["id"] for i in first["items"]] == [made[4].id, made[3].id]
    assert first["unread_count"] == 5 and first["next_cursor"]
    assert first["items"][0]["title"] == "申请已受理" and "YW202612040004" in first["items"][0]["body"]
    seen = [i["id"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/v1/notifications?limit=2&cursor={cursor}", headers=person["headers"]).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [n.id for n in reversed(made)]


def test_mark_one_and_all_read(app: Any, client: Any, person: dict) -> None:
    a, b, c = (notify(app, person) for _ in range(3))
    resp = client.post(f"/v1/notifications/{a.id}/read", headers=person["headers"])
    assert resp.status_code == 200 and resp.get_json()["read"] is True
    again = client.post(f"/v1/notifications/{a.id}/read", headers=person["headers"])
    assert again.get_json()["read_at"] == resp.get_json()["read_at"]  # repeating changes nothing
    unread = client.get("/v1/notifications?unread=true", headers=person["headers"]).get_json()
    assert {i["id"] for i in unread["items"]} == {b.id, c.id} and unread["unread_count"] == 2
    done = client.post("/v1/notifications/read-all", headers=person["headers"]).get_json()
    assert done == {"marked": 2, "unread_count": 0}
    assert client.get("/v1/notifications", headers=person["headers"]).get_json()["unread_count"] == 0


def test_someone_elses_notification_is_not_found(app: Any, client: Any, person: dict) -> None:
    theirs = notify(app, person)
    other = make_citizen(app)
    resp = client.post(f"/v1/notifications/{theirs.id}/read", headers=other["headers"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "notifications.not_found"
    assert client.get("/v1/notifications", headers=other["headers"]).get_json()["items"] == []


def test_bad_cursor_and_limits_are_clear_4xx(client: Any, person: dict) -> None:
    bad = client.get("/v1/notifications?cursor=%%%not-base64", headers=person["headers"])
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "notifications.bad_cursor"
    note_id = "0190c6d2-7a39-7c2e-8f6a-3b1d2c4e5f60"
    for raw in (
        f"2026-01-01T00:00:00|{note_id}",  # a time without its zone
        f"0001-01-01T00:00:00+08:00|{note_id}",  # out of range once in UTC
        "2026-01-01T00:00:00+00:00|x\x00y",  # an id no notification can have
    ):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode()
        odd = client.get("/v1/notifications", query_string={"cursor": cursor}, headers=person["headers"])
        assert odd.status_code == 400 and odd.get_json()["error"]["code"] == "notifications.bad_cursor", raw
    assert client.get("/v1/notifications?limit=500", headers=person["headers"]).status_code == 422
    assert client.get("/v1/notifications").status_code == 401


def test_english_on_request(app: Any, client: Any, person: dict) -> None:
    notify(app, person, "case_refused", reason="材料不齐")
    item = client.get("/v1/notifications", headers=person["headers"] | {"Accept-Language": "en"}).get_json()[
        "items"
    ][0]
    assert item["title"] == "Application not accepted"
    assert item["body"].startswith("Your application for")
