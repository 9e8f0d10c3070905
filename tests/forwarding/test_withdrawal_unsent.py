"""A withdrawal and the submissions the province never got: nothing withdrawn is sent afterwards,
and the citizen's "stop" never waits for an operator."""

from __future__ import annotations

from sqlalchemy import select

from domain.applications.models import ForwardingOutbox
from integrations.province.client import ProvinceError
from tests.forwarding.conftest import forward, fresh, get, key, submitted

ROWS = "/admin/v1/forwarding/rows"


def _rows(app_id: str) -> dict[str, ForwardingOutbox]:
    session = fresh()
    found = session.scalars(select(ForwardingOutbox).where(ForwardingOutbox.application_id == app_id)).all()
    session.expunge_all()  # read as they are now, kept readable after the session goes
    return {row.kind: row for row in found}


def _withdraw(client, who: dict, app_id: str):
    resp = client.post(
        f"/v1/applications/{app_id}/withdraw", json={"reason": "不办了"}, headers=who["headers"] | key()
    )
    assert resp.status_code == 200, resp.get_json()
    return resp


def _refusing(fw, monkeypatch) -> None:
    """The province refuses every submission (its validation, say) and takes withdrawals."""
    real = fw.client.intake

    def intake(body):
        if body["action"] == "withdraw":
            return real(body)
        raise ProvinceError("表单校验不通过", retryable=False, status=400, code="E4001")

    monkeypatch.setattr(fw.client, "intake", intake)  # the client is shared: undone after the test


def test_a_case_withdrawn_before_it_was_sent_never_reaches_the_province(client, zhang, services, province):
    case = submitted(client, zhang)
    _withdraw(client, zhang, case["id"])

    assert forward(services) == []  # nothing to send: neither the data nor a withdrawal
    rows = _rows(case["id"])
    assert set(rows) == {"submit"} and rows["submit"].state == "cancelled"
    assert province.stats()["received"] == 0
    assert get(client, zhang, case["id"]).get_json()["status"] == "withdrawn"


def test_a_dead_submission_does_not_hold_up_the_withdrawal_nor_go_out_after_it(
    client, zhang, services, province, ops, monkeypatch
):
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    _refusing(fw, monkeypatch)
    assert forward(services, forwarder=fw) == ["dead"]
    _withdraw(client, zhang, case["id"])

    # The withdrawal goes at once; the province never had the case, which settles it.
    assert forward(services, forwarder=fw) == ["delivered"]
    rows = _rows(case["id"])
    assert rows["withdraw"].state == "delivered" and rows["withdraw"].receipt["no_such_case"] is True
    assert rows["submit"].state == "cancelled"
    stats = client.get("/admin/v1/forwarding/stats", headers=ops).get_json()
    assert stats["dead_letters"] == 0 and stats["by_state"]["cancelled"] == 1
    # Nothing for an operator to replay: the withdrawn case's data stays here.
    replay = client.post(f"{ROWS}/{rows['submit'].id}/replay", headers=ops | key())
    assert replay.status_code == 409 and replay.get_json()["error"]["code"] == "forwarding.not_dead_letter"
    listed = client.get(ROWS, query_string={"state": "cancelled"}, headers=ops).get_json()
    assert [r["id"] for r in listed["items"]] == [rows["submit"].id]
    assert province.stats()["received"] == 0


def test_a_send_under_way_still_goes_first_and_one_that_dies_later_is_not_replayed(
    client, zhang, services, province, ops, monkeypatch
):
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    [(row_id, attempt)] = fw.claim(fresh(), 10)  # the submission is on its way
    _withdraw(client, zhang, case["id"])
    assert _rows(case["id"])["submit"].state == "sending"
    assert fw.claim(fresh(), 10) == []  # the withdrawal waits for the send under way

    _refusing(fw, monkeypatch)
    assert fw.deliver(fresh(), row_id, attempt) == "dead"
    replay = client.post(f"{ROWS}/{row_id}/replay", headers=ops | key())
    assert replay.status_code == 409 and replay.get_json()["error"]["code"] == "forwarding.case_withdrawn"
    en = client.post(f"{ROWS}/{row_id}/replay", headers=ops | key() | {"Accept-Language": "en"})
    assert (
        en.get_json()["error"]["message"]
        == "The applicant withdrew this case; its submission is not replayed"
    )
    assert _rows(case["id"])["submit"].state == "dead"

    assert forward(services, forwarder=fw) == ["delivered"]  # no wait behind the dead letter
    assert province.stats()["received"] == 0


def test_a_withdrawal_of_a_case_the_province_has_is_delivered_as_before(client, zhang, services, province):
    case = submitted(client, zhang)
    assert forward(services) == ["delivered"]
    _withdraw(client, zhang, case["id"])
    assert forward(services) == ["delivered"]
    rows = _rows(case["id"])
    assert rows["submit"].state == "delivered" and rows["withdraw"].receipt_no
    assert province.case(case["case_number"])["stage"] == "withdrawn"


def test_reconciliation_does_not_resend_a_withdrawn_case_the_province_lost(
    app, client, zhang, services, province, clock
):
    """A withdrawn case with a stage event still waiting for its predecessor is asked about; the
    province has lost it: its data is not sent again (nothing is to be stopped there)."""
    from tests.forwarding.conftest import callback, event, ops_headers

    case = submitted(client, zhang)
    assert forward(services) == ["delivered"]
    _withdraw(client, zhang, case["id"])
    assert forward(services) == ["delivered"]
    assert callback(client, app, event(case["case_number"], 5, "accepted", code="1")).status_code == 200
    province.post("reset")  # the province loses every case
    clock.advance(2 * 3600)
    ops = ops_headers(app, client)
    report = client.post("/admin/v1/forwarding/reconcile", headers=ops | key()).get_json()
    assert report["asked"] == 1 and report["unknown"] == 1 and report["resent"] == 0, report
    assert {kind: row.state for kind, row in _rows(case["id"]).items()} == {
        "submit": "delivered", "withdraw": "delivered",
    }  # fmt: skip
    assert forward(services) == [] and province.stats()["received"] == 0


def test_a_send_put_back_after_the_withdrawal_is_cancelled_not_sent(client, zhang, services, province):
    """Claimed, then postponed (the circuit opened, the cap was reached) after the citizen
    withdrew: it was under way when the withdrawal looked, so only now is it stopped."""
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    [(row_id, attempt)] = fw.claim(fresh(), 10)
    _withdraw(client, zhang, case["id"])
    fw.postpone(fresh(), row_id, attempt, 0, "circuit open")
    assert _rows(case["id"])["submit"].state == "cancelled"
    assert forward(services) == ["delivered"]  # the withdrawal; the province has no such case
    assert province.stats()["received"] == 0


def test_a_replay_crossing_the_withdrawal_never_sends_the_withdrawn_data(
    app, client, zhang, services, province, ops, monkeypatch
):
    """The operator replays a dead send while the citizen withdraws: whichever commits first,
    the case's data does not go out again."""
    from core.db import db
    from domain.forwarding import operations
    from tests.evaluations.meanwhile import meanwhile

    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    _refusing(fw, monkeypatch)
    assert forward(services, forwarder=fw) == ["dead"]
    row_id = _rows(case["id"])["submit"].id
    other = meanwhile(
        monkeypatch, operations, app,
        lambda c: c.post(f"/v1/applications/{case['id']}/withdraw", json={"reason": "不办了"},
                         headers=zhang["headers"] | key()),
    )  # fmt: skip
    operations.replay(db.session(), row_id, operator_id="op-1")  # the withdrawal starts inside it
    assert other.finish().status_code == 200
    assert other.waited, "the withdrawal went through while the replay held the case"
    assert _rows(case["id"])["submit"].state == "cancelled"
    monkeypatch.undo()
    assert forward(services) == ["delivered"]  # the withdrawal alone
    assert province.stats()["received"] == 0
