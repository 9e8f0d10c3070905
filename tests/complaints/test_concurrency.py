"""A complaint changed by two requests at once (the citizen's rating from two devices, a rating
and an operator's answer of the next round; two operators' answers are in
test_one_answer_per_round.py): the complaint is locked before its state is checked, so the
second waits for the first to commit, then is judged on the state the first left, and its
timeline events are numbered after the first one's (never a 500 on a repeated seq)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.db import db
from domain.complaints import service as complaints
from domain.complaints.models import Complaint, ComplaintEvent
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.complaints.test_complaints import URL, file
from tests.domain.operators.factories import admin_headers, make_operator
from tests.evaluations.meanwhile import meanwhile


@pytest.fixture
def operators(app: Any, client: Any) -> list[dict]:
    return [
        admin_headers(client, make_operator(app, username=f"hotline-{i}", roles=("case_operator",)))
        for i in range(2)
    ]


def _replied(client: Any, who: dict, operator: dict) -> str:
    made = file(client, who)
    assert made.status_code == 201, made.get_json()
    complaint_id = made.get_json()["id"]
    answer = _reply(client, operator, complaint_id, "已核实")
    assert answer.status_code == 200, answer.get_json()
    return complaint_id


def _reply(client: Any, operator: dict, complaint_id: str, text: str) -> Any:
    return client.post(f"/admin/v1/complaints/{complaint_id}/reply", json={"text": text}, headers=operator)


def _rate(client: Any, who: dict, complaint_id: str, rating: str) -> Any:
    return client.post(f"{URL}/{complaint_id}/rating", json={"rating": rating}, headers=who["headers"])


def _stored(complaint_id: str) -> tuple[Complaint, list[tuple[int, str]]]:
    session = db.session()
    complaint = session.get(Complaint, complaint_id, populate_existing=True)
    events = session.execute(
        select(ComplaintEvent.seq, ComplaintEvent.kind)
        .where(ComplaintEvent.complaint_id == complaint_id)
        .order_by(ComplaintEvent.seq)
    ).all()
    session.rollback()
    return complaint, [tuple(e) for e in events]


@pytest.mark.parametrize(("first", "second"), [("满意", "不满意"), ("不满意", "满意"), ("满意", "满意")])
def test_two_ratings_at_once_one_counts(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],
    monkeypatch: Any,
    first: str,
    second: str,
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    other = meanwhile(monkeypatch, complaints, app, lambda c: _rate(c, zhang, complaint_id, second))
    won = _rate(client, zhang, complaint_id, first)
    lost = other.finish()
    assert won.status_code == 200, won.get_json()
    assert other.waited, "the second rating went through while the first held the complaint"
    assert lost.status_code == 409 and lost.get_json()["error"]["code"] == "complaints.state", lost.get_json()
    complaint, events = _stored(complaint_id)
    assert complaint.reply_rating == first
    closing = [(4, "closed")] if first != "不满意" else []
    assert events == [(1, "submitted"), (2, "replied"), (3, "rated"), *closing]


def test_a_rating_and_a_further_answer_at_once_are_both_kept_in_order(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],
    monkeypatch: Any,
) -> None:
    complaint_id = _replied(client, zhang, operators[0])
    other = meanwhile(
        monkeypatch, complaints, app, lambda c: _reply(c, operators[1], complaint_id, "补充答复")
    )
    rated = _rate(client, zhang, complaint_id, "不满意")
    answered = other.finish()
    assert rated.status_code == 200, rated.get_json()
    assert other.waited, "the answer went through while the rating held the complaint"
    # 不满意 sent it back for another answer, which the waiting operator then gave.
    assert answered.status_code == 200, answered.get_json()
    complaint, events = _stored(complaint_id)
    # The new answer awaits its own rating (the 不满意 is on the timeline).
    assert (complaint.status, complaint.reply_rating) == ("replied", None)
    assert events == [(1, "submitted"), (2, "replied"), (3, "rated"), (4, "replied")]


def test_an_answer_and_a_closing_rating_at_once(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    operators: list[dict],
    monkeypatch: Any,
) -> None:
    """The operator answers the next round (after 不满意) while the citizen, on a stale screen,
    closes it: the rating waits, then rates the newest answer, and the timeline has no repeated
    number."""
    complaint_id = _replied(client, zhang, operators[0])
    assert _rate(client, zhang, complaint_id, "不满意").status_code == 200
    other = meanwhile(monkeypatch, complaints, app, lambda c: _rate(c, zhang, complaint_id, "满意"))
    answered = _reply(client, operators[1], complaint_id, "补充答复")
    rated = other.finish()
    assert answered.status_code == 200, answered.get_json()
    assert other.waited, "the rating went through while the answer held the complaint"
    assert rated.status_code == 200, rated.get_json()
    complaint, events = _stored(complaint_id)
    assert complaint.status == "closed"
    assert events == [
        (1, "submitted"), (2, "replied"), (3, "rated"), (4, "replied"), (5, "rated"), (6, "closed"),
    ]  # fmt: skip
