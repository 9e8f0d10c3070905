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


def test_an_attached_certificate_still_counts_after_the_account_merge(
    app: Any, client: Any, seeded: Any
) -> None:
    """A draft made in the mini-program with the ID card attached from the library; binding the
    phone then merges the mini-program account into the app account. The card is valid: the
    submission must not call it "no longer valid" because the wallet row stayed behind."""
    from core.db import db
    from domain.accounts import service as accounts
    from domain.accounts.models import Account
    from domain.identity import hall
    from tests.api.v1.applications.conftest import SS_CARD, missing_data
    from tests.conftest import make_citizen
    from tests.domain.test_merge_followups import wechat_citizen

    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD)), skip=4
    )
    svc = app.extensions["yiwang"]
    mini = wechat_citizen(app)
    hall.record_in_person(
        db.session(), deps=svc.identity, operator_id="op-test", account_id=mini["account_id"],
        name=person.name, id_number=person.id_number, hall="天河区政务服务中心", request_id=None,
    )  # fmt: skip
    draft = create(client, mini, service_code=SS_CARD).get_json()
    body = share(client, mini, draft).get_json()
    form = client.get(f"{URL}/{draft['id']}/form", headers=mini["headers"]).get_json()
    ready = patch(client, mini, body, missing_data(form["schema"], body["data"])).get_json()
    id_card = next(m for m in ready["materials"] if m["id"] == "id_card")
    assert any(s["kind"] == "ecert" for s in id_card["satisfied_by"])
    phone = "13955501234"
    on_app = make_citizen(app, phone=phone)
    session = db.session()
    accounts.bind_phone(
        session, encryptor=svc.encryptor, hasher=svc.hasher,
        account=session.get(Account, mini["account_id"]), phone=phone,
    )  # fmt: skip
    session.commit()
    db.session.remove()
    moved = get(client, on_app, draft["id"]).get_json()
    resp = submit(client, on_app, moved)
    assert resp.status_code == 200, resp.get_json()


def _notices(db_session: Any, app_id: str) -> list[Any]:
    from domain.applications.models import ApplicationNotice

    db_session.expire_all()
    return db_session.scalars(
        select(ApplicationNotice).where(
            ApplicationNotice.application_id == app_id, ApplicationNotice.event_type.like("shared%")
        )
    ).all()


def test_a_record_that_fills_and_proves_nothing_is_not_announced_as_filled_in(
    app: Any, client: Any, db_session: Any, clock: Any, exchange_sim: Any, seeded: Any, services: Any
) -> None:
    from tests.shared_data.conftest import sim
    from tests.shared_data.test_sharing_flow import RENT_WITHDRAWAL, _ticket

    owner = person_where(lambda p: p.adult and "property" in p.extra and not p.spouse)
    who = verified_as(app, owner)
    draft = create(client, who, service_code=RENT_WITHDRAWAL).get_json()
    body = share(client, who, draft).get_json()
    sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, body['id'])}", {"decision": "approve"})
    clock.advance(services.govdata.poll_seconds + 1)
    assert sharing.poll_pending(db_session, services.govdata) == 1
    after = get(client, who, body["id"]).get_json()
    assert not next(m for m in after["materials"] if m["id"] == "no_property")["satisfied"]
    notices = _notices(db_session, body["id"])
    assert [n.event_type for n in notices] == ["shared_data_unavailable"]
    assert notices[0].params["status"] == "not_usable"  # "已获取但不能用于本次申请"


def test_a_record_arriving_after_submission_brings_no_notice(
    app: Any, client: Any, db_session: Any, clock: Any, exchange_sim: Any, seeded: Any, services: Any
) -> None:
    from tests.api.v1.applications.conftest import jpeg, missing_data, upload
    from tests.shared_data.conftest import sim
    from tests.shared_data.test_sharing_flow import _pending_property, _ticket

    who, body, _ = _pending_property(app, client, exchange_sim)
    form = client.get(f"{URL}/{body['id']}/form", headers=who["headers"]).get_json()
    saved = patch(client, who, body, missing_data(form["schema"], body["data"]))
    assert saved.status_code == 200, saved.get_json()
    for m in saved.get_json()["materials"]:
        if m["requirement"] == "required" and not m["satisfied"]:
            assert upload(client, who, body["id"], m["id"], jpeg()).status_code == 201
    done = submit(client, who, get(client, who, body["id"]).get_json())
    assert done.status_code == 200, done.get_json()
    sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, body['id'])}", {"decision": "approve"})
    clock.advance(services.govdata.poll_seconds + 1)
    sharing.poll_pending(db_session, services.govdata)
    assert get(client, who, body["id"]).get_json()["revision"] == done.get_json()["revision"]
    assert _notices(db_session, body["id"]) == []


def test_a_pending_item_the_exchange_gives_up_on_is_announced(
    app: Any, client: Any, db_session: Any, clock: Any, exchange_sim: Any, seeded: Any, services: Any,
    monkeypatch: Any,
) -> None:  # fmt: skip
    from tests.shared_data.test_sharing_flow import _pending_property

    who, body, _ = _pending_property(app, client, exchange_sim)

    def gone(**_: Any) -> Any:
        raise GovDataError("工单不存在", retryable=False, status=404, code="E404")

    monkeypatch.setattr(services.govdata.exchange, "ticket", gone)
    clock.advance(services.govdata.poll_seconds + 1)
    sharing.poll_pending(db_session, services.govdata)
    after = get(client, who, body["id"]).get_json()
    item = next(d for d in after["data_sharing"]["datasets"] if d["id"] == "property.real_estate_register")
    assert item["status"] == "unavailable"
    assert [n.event_type for n in _notices(db_session, body["id"])] == ["shared_data_unavailable"]
