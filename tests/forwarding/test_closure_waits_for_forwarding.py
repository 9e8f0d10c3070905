"""A withdrawn case is finished, but its withdrawal may not have reached the province yet:
should the province refuse it, the refusal is recorded with the applicant's name masked, which
needs the name the closure erases. So the closure waits until every forwarding row is done."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from domain.applications.models import ForwardingOutbox
from tests.api.v1.test_account_closure import close
from tests.forwarding.conftest import forward, fresh, key, submitted


def test_the_closure_waits_until_the_withdrawal_reached_the_province(
    client: Any, zhang: dict, services: Any, province: Any
) -> None:
    case = submitted(client, zhang)
    assert forward(services) == ["delivered"]
    withdrawn = client.post(
        f"/v1/applications/{case['id']}/withdraw", json={"reason": "不办了"}, headers=zhang["headers"] | key()
    )
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"

    refused = close(client, zhang)
    assert refused.status_code == 409, refused.get_json()
    blockers = refused.get_json()["error"]["details"]["blockers"]
    assert [(b["type"], b["id"], b["ref"]) for b in blockers] == [
        ("forwarding_pending", case["id"], case["case_number"])
    ]
    preview = client.get("/v1/me/closure", headers=zhang["headers"]).get_json()
    assert preview["can_close"] is False and preview["blockers"][0]["type"] == "forwarding_pending"

    # A dead letter is not done either: an operator replays it.
    session = fresh()
    session.execute(
        update(ForwardingOutbox)
        .where(ForwardingOutbox.application_id == case["id"], ForwardingOutbox.kind == "withdraw")
        .values(state="dead")
    )
    session.commit()
    assert close(client, zhang).status_code == 409
    session.execute(
        update(ForwardingOutbox)
        .where(ForwardingOutbox.application_id == case["id"], ForwardingOutbox.kind == "withdraw")
        .values(state="pending")
    )
    session.commit()

    assert forward(services) == ["delivered"]
    assert close(client, zhang).status_code == 200
