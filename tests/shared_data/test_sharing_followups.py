"""Shared data after the first answer: an authorisation closed even when the exchange was busy,
and what the citizen chose kept when they authorise again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from domain.shared_data import service as sharing
from domain.shared_data.models import SharingGrant
from integrations.govdata.client import GovDataError
from tests.api.v1.applications.conftest import URL, create, get, patch, submit
from tests.shared_data.conftest import certs, person_where, verified_as
from tests.shared_data.test_sharing_flow import (
    ID_CARD,
    UNEMPLOYMENT,
    _assert_closed_at_the_exchange,
    _ss_card_ready,
    share,
)


def test_a_finished_cases_authorisation_is_closed_once_the_busy_exchange_answers(
    app: Any, client: Any, db_session: Any, exchange_sim: Any, seeded: Any, services: Any, monkeypatch: Any
) -> None:
    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD)), skip=3
    )
    who, ready = _ss_card_ready(app, client, person)
    assert submit(client, who, ready).status_code == 200
    withdrawn = client.post(
        f"{URL}/{ready['id']}/withdraw", json={"reason": "不办了"}, headers=who["headers"]
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    exchange = services.govdata.exchange
    real = exchange.revoke

    def busy(remote_id: str) -> None:
        raise GovDataError("busy", retryable=True, status=503)

    monkeypatch.setattr(exchange, "revoke", busy)
    sharing.purge_finished(db_session, services.govdata)  # the values go; the exchange is busy
    monkeypatch.setattr(exchange, "revoke", real)
    sharing.purge_finished(db_session, services.govdata)  # the next pass
    db_session.expire_all()
    grant = db_session.scalar(select(SharingGrant).where(SharingGrant.application_id == ready["id"]))
    assert grant.revoked_at is not None
    _assert_closed_at_the_exchange(exchange_sim, grant, person, ready["id"])


def test_authorising_again_keeps_the_payout_account_the_citizen_chose(
    app: Any, client: Any, seeded: Any
) -> None:
    """The payout account comes suggested from the social security card and the citizen may
    choose another; authorising again (a new consent text, a retry) must not put the card's
    account back, masked, where the benefit would then be paid."""
    person = person_where(lambda p: "employer" in p.extra)
    who = verified_as(app, person)
    draft = create(client, who, service_code=UNEMPLOYMENT).get_json()
    body = share(client, who, draft).get_json()
    changed = patch(client, who, body, {"payout_account": {"account_no": "6222020200001234567"}})
    assert changed.status_code == 200, changed.get_json()
    again = share(client, who, get(client, who, draft["id"]).get_json())
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["data"]["payout_account"]["account_no"] == "6222020200001234567"
    assert again.get_json()["provenance"]["payout_account.account_no"]["source"] == "user"
    # Fields the citizen did not change are filled afresh from the new authorisation.
    assert again.get_json()["data"]["unemployment"]["last_employer"] == person.extra["employer"]
