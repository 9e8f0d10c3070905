"""One answer per round: a complaint answered and waiting for the citizen's rating is not
answered again by another operator (409 `complaints.state`, saying so), also when two operators
answer at once; the citizen is told of one answer. 不满意 opens the next round."""

from __future__ import annotations

from typing import Any

from core.db import db
from domain.complaints import service as complaints
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.complaints.test_complaints import URL, file
from tests.complaints.test_concurrency import _rate, _reply, _stored, operators  # noqa: F401 - fixtures
from tests.evaluations.meanwhile import meanwhile


def _told(client: Any, who: dict) -> int:
    inbox = client.get("/v1/notifications", headers=who["headers"]).get_json()["items"]
    return len([n for n in inbox if n["event_type"] == "complaint_replied"])


def test_a_second_answer_to_the_same_round_is_refused(
    client: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = file(client, zhang).get_json()["id"]
    assert _reply(client, operators[0], complaint_id, "已核实").status_code == 200
    again = _reply(client, operators[1], complaint_id, "我也来答复")
    assert again.status_code == 409, again.get_json()
    error = again.get_json()["error"]
    assert error["code"] == "complaints.state"
    assert "已答复" in error["message"] and "评价" in error["message"]
    english = client.post(
        f"/admin/v1/complaints/{complaint_id}/reply",
        json={"text": "again"},
        headers=operators[1] | {"Accept-Language": "en"},
    ).get_json()["error"]
    assert english["code"] == "complaints.state" and "awaits the citizen's rating" in english["message"]
    _, events = _stored(complaint_id)
    assert events == [(1, "submitted"), (2, "replied")]
    assert _told(client, zhang) == 1
    mine = client.get(f"{URL}/{complaint_id}", headers=zhang["headers"]).get_json()
    assert [e["text"] for e in mine["timeline"] if e["kind"] == "replied"] == ["已核实"]
    # 不满意 opens the next round, which another operator may answer.
    assert _rate(client, zhang, complaint_id, "不满意").status_code == 200
    assert _reply(client, operators[1], complaint_id, "再次核实").status_code == 200
    assert _told(client, zhang) == 2
    # Once closed, nobody answers it any more.
    assert _rate(client, zhang, complaint_id, "满意").status_code == 200
    closed = _reply(client, operators[0], complaint_id, "补充")
    assert closed.status_code == 409 and closed.get_json()["error"]["code"] == "complaints.state"
    assert "已办结" in closed.get_json()["error"]["message"]


def test_two_operators_answering_at_once_one_wins(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
    monkeypatch: Any,
) -> None:
    complaint_id = file(client, zhang).get_json()["id"]
    other = meanwhile(monkeypatch, complaints, app, lambda c: _reply(c, operators[1], complaint_id, "答复 1"))
    won = _reply(client, operators[0], complaint_id, "答复 0")
    lost = other.finish()
    assert won.status_code == 200, won.get_json()
    assert other.waited, "the second answer went through while the first held the complaint"
    assert lost.status_code == 409 and lost.get_json()["error"]["code"] == "complaints.state", lost.get_json()
    _, events = _stored(complaint_id)
    assert events == [(1, "submitted"), (2, "replied")]
    db.session.remove()
    assert _told(client, zhang) == 1


def test_the_next_rounds_operator_reads_what_was_answered_before(
    client: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = file(client, zhang).get_json()["id"]
    assert _reply(client, operators[0], complaint_id, "已核实").status_code == 200
    assert _rate(client, zhang, complaint_id, "不满意").status_code == 200
    detail = client.get(f"/admin/v1/complaints/{complaint_id}", headers=operators[1]).get_json()
    assert [(e["kind"], e["text"]) for e in detail["timeline"]] == [
        ("submitted", None), ("replied", "已核实"), ("rated", None),
    ]  # fmt: skip
    assert detail["timeline"][2]["details"] == {"rating": "不满意"}
    assert "跑了三次" in detail["text"]  # the complaint itself, once, not again in the timeline


def test_a_rating_out_of_turn_says_why(
    client: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],  # noqa: F811
) -> None:
    complaint_id = file(client, zhang).get_json()["id"]
    early = _rate(client, zhang, complaint_id, "满意")
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "complaints.state"
    assert "尚未答复" in early.get_json()["error"]["message"]
    english = client.post(
        f"{URL}/{complaint_id}/rating",
        json={"rating": "满意"},
        headers=zhang["headers"] | {"Accept-Language": "en"},
    ).get_json()["error"]
    assert "not been answered" in english["message"]
    assert _reply(client, operators[0], complaint_id, "已核实").status_code == 200
    assert _rate(client, zhang, complaint_id, "满意").status_code == 200
    late = _rate(client, zhang, complaint_id, "不满意")
    assert late.status_code == 409 and "已办结" in late.get_json()["error"]["message"]
    _, events = _stored(complaint_id)
    assert [kind for _, kind in events] == ["submitted", "replied", "rated", "closed"]
