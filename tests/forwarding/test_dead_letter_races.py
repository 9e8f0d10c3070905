"""Two operators at one dead letter at once: it is replayed once, and a correction never lands
on a row another operator has already sent again."""

from __future__ import annotations

from core.db import db
from domain.applications.models import ForwardingOutbox
from tests.forwarding.conftest import forward, fresh, key, submitted
from tests.forwarding.test_withdrawal_unsent import _refusing, _rows


def _dead_row(client, zhang, services, monkeypatch) -> str:
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    _refusing(fw, monkeypatch)
    assert forward(services, forwarder=fw) == ["dead"]
    monkeypatch.undo()
    return _rows(case["id"])["submit"].id


def test_two_replays_of_one_dead_letter_at_once_send_it_once(
    app, client, zhang, services, province, ops, monkeypatch
):
    from domain.forwarding import operations
    from tests.evaluations.meanwhile import meanwhile

    row_id = _dead_row(client, zhang, services, monkeypatch)
    other = meanwhile(
        monkeypatch, operations, app,
        lambda c: c.post(f"/admin/v1/forwarding/rows/{row_id}/replay", headers=ops | key()),
    )  # fmt: skip
    replayed = operations.replay(db.session(), row_id, operator_id="op-1")  # the other starts inside it
    assert replayed.state == "pending"
    second = other.finish()
    assert other.waited, "the second replay went through while the first held the row"
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "forwarding.not_dead_letter"
    monkeypatch.undo()
    assert forward(services) == ["delivered"]
    assert province.stats()["received"] == 1


def test_a_correction_meeting_a_replay_waits_and_is_refused_once_the_row_is_sent_again(
    app, client, zhang, services, province, ops, monkeypatch
):
    from domain.forwarding import operations
    from tests.evaluations.meanwhile import meanwhile

    row_id = _dead_row(client, zhang, services, monkeypatch)
    other = meanwhile(
        monkeypatch, operations, app,
        lambda c: c.patch(f"/admin/v1/forwarding/rows/{row_id}", json={"overrides": {"channel": 3}},
                          headers=ops | key()),
    )  # fmt: skip
    operations.replay(db.session(), row_id, operator_id="op-1")
    fixed = other.finish()
    assert other.waited, "the correction went through while the replay held the row"
    assert fixed.status_code == 409 and fixed.get_json()["error"]["code"] == "forwarding.not_dead_letter"
    assert fresh().get(ForwardingOutbox, row_id).overrides is None  # not laid over a row sent again
