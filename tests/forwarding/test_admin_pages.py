"""The operators' forwarding rows in pages: every dead letter reachable, each once, newest first."""

from __future__ import annotations

from datetime import timedelta

from core import clock
from domain.applications.models import ForwardingOutbox
from tests.forwarding.conftest import fresh, submitted

ROWS = "/admin/v1/forwarding/rows"


def _dead_letters(case: dict, count: int) -> list[str]:
    """`count` dead rows of one case, all written in the same instant (the order needs its
    tie-break), newer than the case's own submission row; their ids newest first."""
    session = fresh()
    at = clock.now() + timedelta(seconds=1)
    rows = [
        ForwardingOutbox(application_id=case["id"], kind="resubmit", submission_version=n + 2,
                         case_number=case["case_number"], state="dead", attempts=1, created_at=at,
                         last_error="400 E4001")
        for n in range(count)
    ]  # fmt: skip
    session.add_all(rows)
    session.commit()
    return sorted((row.id for row in rows), reverse=True)


def test_dead_letters_page_past_the_first_fifty(client, zhang, ops):
    ids = _dead_letters(submitted(client, zhang), 70)
    first = client.get(ROWS, query_string={"state": "dead"}, headers=ops)
    assert first.status_code == 200, first.get_json()
    assert len(first.get_json()["items"]) == 50 and first.get_json()["next_cursor"]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"state": "dead", "limit": 30} | ({"cursor": cursor} if cursor else {})
        page = client.get(ROWS, query_string=query, headers=ops)
        assert page.status_code == 200, page.get_json()
        seen += [row["id"] for row in page.get_json()["items"]]
        cursor, pages = page.get_json()["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 3 and seen == ids  # all 70, none twice, newest first then by id
    everything = client.get(ROWS, query_string={"limit": 200}, headers=ops).get_json()
    assert len(everything["items"]) == 71 and everything["next_cursor"] is None  # + the submission
    assert everything["items"][-1]["kind"] == "submit"


def test_a_new_dead_letter_does_not_shift_the_next_page(client, zhang, ops):
    case = submitted(client, zhang)
    ids = _dead_letters(case, 4)
    first = client.get(ROWS, query_string={"state": "dead", "limit": 2}, headers=ops).get_json()
    assert [row["id"] for row in first["items"]] == ids[:2]
    session = fresh()
    session.add(ForwardingOutbox(application_id=case["id"], kind="withdraw", submission_version=9,
                                 case_number=case["case_number"], state="dead",
                                 created_at=clock.now() + timedelta(minutes=5)))  # fmt: skip
    session.commit()
    rest = client.get(ROWS, query_string={"state": "dead", "cursor": first["next_cursor"]}, headers=ops)
    assert [row["id"] for row in rest.get_json()["items"]] == ids[2:] and rest.get_json()[
        "next_cursor"
    ] is None


def test_a_bad_cursor_or_limit_is_a_clear_error(client, ops):
    naive = "WyIyMDI2LTEyLTA2VDAwOjAwOjAwIiwiYWJjIl0"  # a naive time and an id that cannot be one
    for cursor in ("garbage", "WyJ4Il0", naive, "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwiYWJjIl0"):
        resp = client.get(ROWS, query_string={"cursor": cursor}, headers=ops)
        assert resp.status_code == 400, (cursor, resp.get_json())
        assert resp.get_json()["error"]["code"] == "forwarding.bad_cursor"
        assert resp.get_json()["error"]["message"] == "分页游标无效，请从第一页重新加载"
    en = client.get(ROWS, query_string={"cursor": "garbage"}, headers=ops | {"Accept-Language": "en"})
    assert en.get_json()["error"]["message"].startswith("The page cursor is invalid")
    for limit in (0, 201):
        assert client.get(ROWS, query_string={"limit": limit}, headers=ops).status_code == 422
    assert client.get(ROWS, query_string={"cursor": "\u0000" * 10}, headers=ops).status_code == 422


def test_row_times_are_iso_8601_like_every_other_answer(client, zhang, ops):
    from datetime import datetime

    submitted(client, zhang)
    [row] = client.get(ROWS, headers=ops).get_json()["items"]
    times = {name: value for name, value in row.items() if name.endswith("_at") and value is not None}
    assert "created_at" in times
    for name, value in times.items():
        assert datetime.fromisoformat(value).utcoffset() is not None, (name, value)  # not "Sun, 06 Dec …"
    assert client.get(f"{ROWS}/{row['id']}", headers=ops).get_json() == row


def test_the_operators_figures_match_the_document(client, zhang, ops):
    import jsonschema

    from tests.api.openapi_schema import answer_schema

    spec = client.get("/openapi.json").get_json()
    case = submitted(client, zhang)
    answers = {
        "/admin/v1/forwarding/stats": client.get("/admin/v1/forwarding/stats", headers=ops),
        "/admin/v1/forwarding/unconfirmed": client.get("/admin/v1/forwarding/unconfirmed", headers=ops),
        "/admin/v1/forwarding/rows": client.get(ROWS, headers=ops),
        "/admin/v1/forwarding/rows/{row_id}": client.get(f"{ROWS}/{_first_row(client, ops)}", headers=ops),
    }
    for path, resp in answers.items():
        assert resp.status_code == 200, (path, resp.get_json())
        jsonschema.validate(resp.get_json(), answer_schema(spec, "get", path))
    assert answers["/admin/v1/forwarding/unconfirmed"].get_json()["count"] >= 1
    assert case["case_number"] in repr(answers["/admin/v1/forwarding/rows"].get_json())


def _first_row(client, ops):
    return client.get(ROWS, headers=ops).get_json()["items"][0]["id"]
