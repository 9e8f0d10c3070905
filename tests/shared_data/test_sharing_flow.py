"""A draft fetches shared data and certificates with the citizen's consent: fields, materials, ledger,
pending records, revoked certificates, retention."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from domain.applications.models import ApplicationNotice
from domain.identity.models import ConsentRecord
from domain.ledger.models import DataAccess
from domain.shared_data import service as sharing
from domain.shared_data.models import SharedRecord, SharingGrant
from integrations.govdata.client import ExchangeClient, GovDataError
from integrations.govdata.protocol import credentials
from tests.api.v1.applications.conftest import (
    SS_CARD,
    URL,
    create,
    error_code,
    get,
    jpeg,
    key,
    missing_data,
    patch,
    relogin,
    stage,
    submit,
    upload,
)
from tests.shared_data.conftest import certs, person_where, sim, verified_as

HUKOU_MOVE = "11440100007502318X3000105015000"  # 户口迁入登记（夫妻投靠）: marriage, hukou, property
MARRIAGE = "11440100007502908Y3000106001000"  # 结婚登记: the spouse bound to no source
PROPERTY_QUERY = "11440100MB2C4537943000111001000"  # 不动产登记资料查询: a conditional record
ID_CARD = "11100000000019713D001"


def share(client: Any, who: dict, draft: dict, **body: Any) -> Any:
    payload = {"accepted": True, "text_version": draft["data_sharing"]["text_version"]} | body
    return client.post(f"{URL}/{draft['id']}/data-sharing", json=payload, headers=who["headers"])


def ledger(client: Any, who: dict, **query: Any) -> dict:
    resp = client.get("/v1/me/data-access", query_string=query, headers=who["headers"])
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def married_home_owner(skip: int = 0) -> Any:
    return person_where(
        lambda p: (
            p.spouse is not None and "property" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD))
        ),
        skip,
    )


def test_consent_fills_verified_fields_and_satisfies_materials(app, client, seeded):
    person = married_home_owner()
    who = verified_as(app, person)
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    offer = draft["data_sharing"]
    assert offer["authorised"] is False
    assert "婚姻登记信息" in offer["text"] and "结婚证" in offer["text"]
    assert not any(m["satisfied"] for m in draft["materials"])

    resp = share(client, who, draft)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["revision"] > draft["revision"]
    prov = body["provenance"]
    assert prov["spouse.name"]["source"] == "exchange:marriage.registration"
    assert prov["spouse.name"]["verified"] and prov["spouse.name"]["read_only"]
    assert prov["household.address"]["source"] == "exchange:hukou.household_register"
    # The spouse's name and ID number are shown masked, like the applicant's own.
    assert body["data"]["spouse"]["id_number"] != person.spouse.id_number
    assert "*" in body["data"]["spouse"]["id_number"] and "*" in body["data"]["spouse"]["name"]
    materials = {m["id"]: m for m in body["materials"]}
    assert {"shared", "ecert"} <= {s["kind"] for s in materials["marriage_cert"]["satisfied_by"]}
    assert materials["id_cards"]["satisfied"] and materials["hukou_books"]["satisfied"]
    datasets = {d["id"]: d for d in body["data_sharing"]["datasets"]}
    assert datasets["marriage.registration"]["status"] == "found"
    assert datasets["property.real_estate_register"]["status"] == "pending"  # needs the department
    assert datasets["property.real_estate_register"]["expected_by"]
    # Verified fields cannot be overwritten by an autosave.
    refused = patch(client, who, body, {"spouse": {"name": "别人"}})
    assert refused.status_code == 422 and error_code(refused) == "application.field_read_only"


def test_authorising_on_the_last_day_keeps_the_draft_as_a_save_would(app, client, db_session, seeded, clock):
    """A citizen who comes back on day 29 and authorises the data sharing has worked on the
    draft: it is not purged the next day, as if untouched since it was created."""
    from domain.applications.drafts import purge_expired_drafts

    who = verified_as(app, married_home_owner())
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    clock.advance(29 * 86400)
    who = relogin(app, who)  # the session of day 0 has ended
    shared = share(client, who, draft)
    assert shared.status_code == 200, shared.get_json()
    clock.advance(2 * 86400)
    assert purge_expired_drafts(db_session) == 0
    assert get(client, relogin(app, who), draft["id"]).status_code == 200


def test_every_query_and_every_certificate_used_is_in_the_ledger(app, client, seeded):
    who = verified_as(app, married_home_owner())
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    assert ledger(client, who)["items"] == []
    body = share(client, who, draft).get_json()
    items = ledger(client, who, limit=100)["items"]
    queried = {i["resource"] for i in items if i["source"] == "exchange"}
    assert queried == {f"dataset:{d['id']}" for d in body["data_sharing"]["datasets"]}
    used = {i["resource"] for i in items if i["source"] == "ecert"}
    attached = {s["ref"] for m in body["materials"] for s in m["satisfied_by"] if s["kind"] == "ecert"}
    assert used == {f"certificate:{ref}" for ref in attached}
    assert all(i["application_id"] == draft["id"] and "户口迁入" in i["purpose"] for i in items)
    assert all(i["accessor"]["type"] == "yiwang" for i in items)
    # Newest first, paged with `before`.
    first = ledger(client, who, limit=2)
    second = ledger(client, who, limit=2, before=first["next"])
    assert [i["id"] for i in first["items"] + second["items"]] == [i["id"] for i in items[:4]]
    # Another citizen sees none of it.
    other = verified_as(app, married_home_owner(skip=1))
    assert ledger(client, other)["items"] == []


def test_consent_must_be_given_to_the_text_shown(app, client, db_session, seeded, exchange_sim):
    who = verified_as(app, married_home_owner())
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    declined = share(client, who, draft, accepted=False)
    assert declined.status_code == 422 and error_code(declined) == "sharing.consent_required"
    assert declined.get_json()["error"]["details"]["text_version"] == draft["data_sharing"]["text_version"]
    outdated = share(client, who, draft, text_version="data-000000000000")
    assert outdated.status_code == 422 and error_code(outdated) == "sharing.consent_outdated"
    english = client.post(
        f"{URL}/{draft['id']}/data-sharing",
        json={"accepted": False, "text_version": "x"},
        headers=who["headers"] | {"Accept-Language": "en"},
    )
    assert "Agree" in english.get_json()["error"]["message"]
    assert db_session.scalar(select(func.count()).select_from(SharingGrant)) == 0
    assert db_session.scalar(select(func.count()).select_from(DataAccess)) == 0
    assert sim(exchange_sim.url, "_sim/stats")["authorizations"] == 0  # nothing asked of the exchange


def test_unverified_or_other_citizens_cannot_fetch(app, client, seeded, citizen):
    owner = verified_as(app, married_home_owner())
    draft = create(client, owner, service_code=HUKOU_MOVE).get_json()
    stranger = verified_as(app, married_home_owner(skip=1))
    resp = share(client, stranger, draft)
    assert resp.status_code == 404 and error_code(resp) == "application.not_found"
    own = create(client, citizen, service_code=SS_CARD).get_json()  # logged in, never verified
    resp = share(client, citizen, own)
    assert resp.status_code == 403 and error_code(resp) == "sharing.identity_required"


def test_exchange_down_writes_nothing(app, client, db_session, seeded, services, monkeypatch):
    who = verified_as(app, married_home_owner())
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    monkeypatch.setattr(services.govdata.exchange, "base_url", "http://127.0.0.1:9/")
    resp = share(client, who, draft)
    assert resp.status_code == 503 and error_code(resp) == "sharing.source_unavailable"
    assert db_session.scalar(select(func.count()).select_from(SharingGrant)) == 0
    assert (
        db_session.scalar(
            select(func.count())
            .select_from(ConsentRecord)
            .where(ConsentRecord.purpose == sharing.CONSENT_PURPOSE)
        )
        == 0
    )
    assert get(client, who, draft["id"]).get_json()["revision"] == draft["revision"]


def _pending_property(app: Any, client: Any, exchange_sim: Any) -> tuple[dict, dict, str]:
    person = person_where(lambda p: "property" in p.extra)
    who = verified_as(app, person)
    draft = create(client, who, service_code=PROPERTY_QUERY).get_json()
    body = share(client, who, draft).get_json()
    assert "property" not in str(body["provenance"])  # nothing yet: the department decides
    register = next(m for m in body["materials"] if m["id"] == "register")
    assert not register["satisfied"]
    ticket = next(q for q in sim(exchange_sim.url, "_sim/log")["queries"] if q["status"] == "pending")
    return who, body, ticket["authorization_id"]


def _ticket(db_session: Any, app_id: str) -> str:
    row = db_session.scalar(
        select(SharedRecord).where(SharedRecord.application_id == app_id, SharedRecord.status == "pending")
    )
    return row.ticket


def test_pending_record_resolves_and_updates_the_draft(
    app, client, db_session, clock, exchange_sim, seeded, services
):
    who, body, _ = _pending_property(app, client, exchange_sim)
    ticket = _ticket(db_session, body["id"])
    assert sharing.poll_pending(db_session, services.govdata) == 0  # not due yet
    clock.advance(services.govdata.poll_seconds + 1)
    assert sharing.poll_pending(db_session, services.govdata) == 0  # asked: still pending
    sim(exchange_sim.url, f"_sim/tickets/{ticket}", {"decision": "approve"})
    clock.advance(services.govdata.poll_seconds + 1)
    assert sharing.poll_pending(db_session, services.govdata) == 1
    after = get(client, who, body["id"]).get_json()
    assert after["revision"] > body["revision"]
    field = next(
        p for p, v in after["provenance"].items() if v["source"] == "exchange:property.real_estate_register"
    )
    assert after["data"][field.split(".")[0]][field.split(".")[1]].startswith("粤")
    assert next(m for m in after["materials"] if m["id"] == "register")["satisfied"]
    notice = db_session.scalar(
        select(ApplicationNotice).where(ApplicationNotice.application_id == body["id"])
    )
    assert notice.event_type == "shared_data_ready" and notice.params["dataset_name"] == "不动产登记信息"


LONG_REASON = "经核查，该不动产存在产权争议，" * 20  # 300 characters of the department's own words


@pytest.mark.parametrize(
    ("reason", "shown"), [("产权存在争议", "产权存在争议"), (LONG_REASON, LONG_REASON[:199] + "…")]
)
def test_denied_record_tells_the_citizen_to_provide_it(
    app, client, db_session, clock, exchange_sim, seeded, services, reason, shown
):
    who, body, _ = _pending_property(app, client, exchange_sim)
    sim(
        exchange_sim.url,
        f"_sim/tickets/{_ticket(db_session, body['id'])}",
        {"decision": "deny", "reason": reason},
    )
    clock.advance(services.govdata.poll_seconds + 1)
    assert sharing.poll_pending(db_session, services.govdata) == 1
    after = get(client, who, body["id"]).get_json()
    state = next(d for d in after["data_sharing"]["datasets"] if d["id"] == "property.real_estate_register")
    assert state["status"] == "denied" and state["reason"] == shown
    assert not next(m for m in after["materials"] if m["id"] == "register")["satisfied"]
    notice = db_session.scalar(
        select(ApplicationNotice).where(ApplicationNotice.application_id == body["id"])
    )
    assert notice.event_type == "shared_data_unavailable"


def _ss_card_ready(app: Any, client: Any, person: Any) -> tuple[dict, dict]:
    who = verified_as(app, person)
    draft = create(client, who, service_code=SS_CARD).get_json()
    body = share(client, who, draft).get_json()
    form = client.get(f"{URL}/{draft['id']}/form", headers=who["headers"]).get_json()
    saved = patch(client, who, body, missing_data(form["schema"], body["data"]))
    assert saved.status_code == 200, saved.get_json()
    return who, saved.get_json()


def test_revoked_certificate_cannot_satisfy_a_material(app, client, ecert_sim, seeded):
    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD))
    )
    who, ready = _ss_card_ready(app, client, person)
    id_card = next(m for m in ready["materials"] if m["id"] == "id_card")
    ref = next(s["ref"] for s in id_card["satisfied_by"] if s["kind"] == "ecert")
    sim(ecert_sim.url, f"_sim/certificates/{ref}/state", {"state": "03"})  # 撤销 after it was attached
    refused = submit(client, who, ready)
    assert refused.status_code == 422, refused.get_json()
    fields = refused.get_json()["error"]["fields"]
    assert any("电子证照" in m and "居民身份证" in m for m in fields["materials.id_card"])
    english = submit(client, who, ready, headers=key() | {"Accept-Language": "en"})
    assert english.status_code == 422
    said = english.get_json()["error"]["fields"]["materials.id_card"]
    assert any("e-certificate for Resident identity card is no longer valid" in m for m in said), said
    # An upload satisfies it instead; the dead reference does not travel with the case.
    assert upload(client, who, ready["id"], "id_card", jpeg()).status_code == 201
    done = submit(client, who, get(client, who, ready["id"]).get_json())
    assert done.status_code == 200, done.get_json()
    kinds = {
        s["kind"] for m in done.get_json()["materials"] if m["id"] == "id_card" for s in m["satisfied_by"]
    }
    assert kinds == {"upload"}
    sent = [i for i in ledger(client, who)["items"] if i["accessor"]["type"] == "department"]
    assert len(sent) == 1 and sent[0]["resource"] == f"application:{done.get_json()['case_number']}"


def test_a_certificate_revoked_during_a_supplement_holds_up_only_the_material_asked_for(
    app, client, ecert_sim, seeded
):
    """The department reviewed the ID card; it asks for the insurance record only. Its
    e-certificate revoked meanwhile must not stop the answer: the citizen could neither replace
    it (not asked for) nor withdraw (accepted), and the case would wait for ever."""
    from tests.domain.operators.factories import admin_headers, make_operator

    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD))
    )
    who, ready = _ss_card_ready(app, client, person)
    case = submit(client, who, ready).get_json()
    officer = admin_headers(client, make_operator(app, username="case-op", roles=("case_operator",)))
    for to in ("received", "accepted", "in_review"):
        assert stage(client, officer, case["id"], to).status_code == 200
    asked = stage(
        client, officer, case["id"], "supplement_requested", materials=["insurance"], note="请补参保证明"
    )
    assert asked.status_code == 200, asked.get_json()
    id_card = next(m for m in ready["materials"] if m["id"] == "id_card")
    ref = next(s["ref"] for s in id_card["satisfied_by"] if s["kind"] == "ecert")
    sim(ecert_sim.url, f"_sim/certificates/{ref}/state", {"state": "03"})
    assert upload(client, who, case["id"], "insurance", jpeg()).status_code == 201
    again = submit(client, who, get(client, who, case["id"]).get_json(), consent=False)
    assert again.status_code == 200, again.get_json()
    assert (again.get_json()["status"], again.get_json()["submission_version"]) == ("resubmitted", 2)

    # Asked for the ID card itself, the revoked certificate is judged, and the citizen may replace it.
    for to in ("received", "supplement_requested"):
        extra = {"materials": ["id_card"]} if to == "supplement_requested" else {}
        assert stage(client, officer, case["id"], to, **extra).status_code == 200
    refused = submit(client, who, get(client, who, case["id"]).get_json(), consent=False)
    assert refused.status_code == 422 and "materials.id_card" in refused.get_json()["error"]["fields"]
    assert upload(client, who, case["id"], "id_card", jpeg()).status_code == 201
    assert submit(client, who, get(client, who, case["id"]).get_json(), consent=False).status_code == 200


def test_each_application_needs_its_own_consent(app, client, exchange_sim, seeded):
    who = verified_as(app, married_home_owner())
    first = create(client, who, service_code=HUKOU_MOVE).get_json()
    share(client, who, first)
    asked = sim(exchange_sim.url, "_sim/stats")["queries"]
    second = create(client, who, service_code=HUKOU_MOVE).get_json()
    assert second["data_sharing"]["authorised"] is False
    assert not any(v["source"].startswith("exchange:") for v in second["provenance"].values())
    share(client, who, second)
    assert sim(exchange_sim.url, "_sim/stats")["queries"] == 2 * asked  # asked again, for this purpose


def test_values_are_deleted_and_the_authorisation_revoked_when_the_case_ends(
    app, client, db_session, exchange_sim, seeded, services
):
    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD)), skip=1
    )
    who, ready = _ss_card_ready(app, client, person)
    done = submit(client, who, ready)
    assert done.status_code == 200
    # The submission's answer shows the sharing as it stands, as a fresh read of the case does.
    shown = done.get_json()["data_sharing"]
    assert shown["authorised"] is True and shown["granted_at"] and shown["datasets"]
    assert shown == get(client, who, ready["id"]).get_json()["data_sharing"]
    grant = db_session.scalar(select(SharingGrant).where(SharingGrant.application_id == ready["id"]))
    assert sharing.purge_finished(db_session, services.govdata) == 0  # still open: still needed
    withdrawn = client.post(
        f"{URL}/{ready['id']}/withdraw", json={"reason": "不办了"}, headers=who["headers"]
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert sharing.purge_finished(db_session, services.govdata) >= 1
    db_session.expire_all()
    rows = db_session.scalars(select(SharedRecord).where(SharedRecord.application_id == ready["id"])).all()
    assert rows and all(r.values_enc is None and r.status == "purged" for r in rows)
    assert db_session.get(SharingGrant, grant.id).revoked_at is not None
    _assert_closed_at_the_exchange(exchange_sim, grant, person, ready["id"])


def _assert_closed_at_the_exchange(exchange_sim: Any, grant: Any, person: Any, application_id: str) -> None:
    """The exchange refuses the grant's authorisation: revoked (E4032)."""
    try:
        ExchangeClient(exchange_sim.url, credentials({})).query(
            authorization_id=grant.remote_id,
            dataset="social_security.insurance_record",
            id_number=person.id_number,
            application_id=application_id,
        )
        raise AssertionError("a revoked authorisation still answered")
    except GovDataError as exc:
        assert exc.code == "E4032"


def test_a_deleted_draft_leaves_no_authorisation_open_at_the_exchange(
    app, client, db_session, exchange_sim, seeded, services
):
    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD)), skip=2
    )
    who, draft = _ss_card_ready(app, client, person)
    grant = db_session.scalar(select(SharingGrant).where(SharingGrant.application_id == draft["id"]))
    assert grant is not None and grant.remote_id
    db_session.rollback()
    assert client.delete(f"{URL}/{draft['id']}", headers=who["headers"]).status_code == 204
    sharing.purge_finished(db_session, services.govdata)
    db_session.expire_all()
    kept = db_session.get(SharingGrant, grant.id)  # the record of what the citizen allowed stays
    assert kept is not None and kept.application_id is None and kept.revoked_at is not None
    assert db_session.scalar(select(func.count()).select_from(SharedRecord).where(
        SharedRecord.application_id == draft["id"])) == 0  # fmt: skip
    _assert_closed_at_the_exchange(exchange_sim, grant, person, draft["id"])


def test_authorising_again_fetches_afresh_and_closes_the_earlier_authorisation(
    app, client, db_session, exchange_sim, seeded
):
    person = married_home_owner()
    who = verified_as(app, person)
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    share(client, who, draft)
    first = db_session.scalar(
        select(SharingGrant).where(SharingGrant.application_id == draft["id"])
    ).remote_id
    again = share(client, who, get(client, who, draft["id"]).get_json())
    assert again.status_code == 200
    db_session.expire_all()
    grant = db_session.scalar(select(SharingGrant).where(SharingGrant.application_id == draft["id"]))
    assert grant.remote_id != first and grant.revoked_at is None
    rows = db_session.scalars(select(SharedRecord).where(SharedRecord.application_id == draft["id"])).all()
    assert len(rows) == len({r.dataset for r in rows}) == 3  # one row per data item, not two
    old = ExchangeClient(exchange_sim.url, credentials({}))
    try:
        old.query(
            authorization_id=first,
            dataset="hukou.household_register",
            id_number=person.id_number,
            application_id=draft["id"],
        )
        raise AssertionError("the replaced authorisation still answered")
    except GovDataError as exc:
        assert exc.code == "E4032"


NEWBORN_SS_CARD = "11440100007504956C3000110001100"  # 社会保障卡申领（新生儿）: the child's birth certificate


def test_a_childs_certificate_is_the_childs_not_the_parents_own(app, client, seeded):
    def young_parent(p: Any) -> bool:
        kids = [c for c in p.children if c.age < 18]
        return p.birth_date.year >= 1996 and bool(kids) and bool(certs(p, "11100000000014303H001"))

    parent = person_where(young_parent)  # born 1996 or later: holds a birth certificate of their own
    who = verified_as(app, parent)
    draft = create(client, who, service_code=NEWBORN_SS_CARD).get_json()
    body = share(client, who, draft).get_json()
    birth = next(m for m in body["materials"] if m["id"] == "birth_cert")
    refs = [s["ref"] for s in birth["satisfied_by"] if s["kind"] == "ecert"]
    youngest = max((c for c in parent.children if c.age < 18), key=lambda c: c.birth_date)
    assert refs == [c.identifier for c in certs(youngest, "11100000000014303H001")]
    # The child's name from the birth record is shown masked, as the parents' names are.
    assert body["provenance"]["child.name"]["source"] == "exchange:birth.medical_certificate"
    assert "*" in body["data"]["child"]["name"] and body["data"]["child"]["name"] != youngest.name

    childless = person_where(lambda p: p.adult and not p.children and p.birth_date.year >= 1996)
    who = verified_as(app, childless)
    draft = create(client, who, service_code=NEWBORN_SS_CARD).get_json()
    body = share(client, who, draft).get_json()
    birth = next(m for m in body["materials"] if m["id"] == "birth_cert")
    assert not any(s["kind"] == "ecert" for s in birth["satisfied_by"])  # their own does not count


RENT_WITHDRAWAL = "12440100455350621M3000113012000"  # 住房公积金提取（租赁自住住房）: 本市无自有住房证明


def test_no_record_in_the_register_is_the_proof_of_owning_no_home(
    app, client, db_session, clock, exchange_sim, seeded, services
):
    def material(body: dict) -> dict:
        return next(m for m in body["materials"] if m["id"] == "no_property")

    results = {}
    for owner in (False, True):
        person = person_where(lambda p, o=owner: p.adult and ("property" in p.extra) == o and not p.spouse)
        who = verified_as(app, person)
        draft = create(client, who, service_code=RENT_WITHDRAWAL).get_json()
        body = share(client, who, draft).get_json()
        assert not material(body)["satisfied"]  # the register answers only after approval
        sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, body['id'])}", {"decision": "approve"})
        results[owner] = (who, body["id"])
    clock.advance(services.govdata.poll_seconds + 1)
    assert sharing.poll_pending(db_session, services.govdata) == 2
    renter, owner = (get(client, *results[o][:1], results[o][1]).get_json() for o in (False, True))
    assert material(renter)["satisfied"] and material(renter)["satisfied_by"][0]["kind"] == "shared"
    assert not material(owner)["satisfied"]  # a home in the register proves the opposite


UNEMPLOYMENT = "11440100007504956C3000110020000"  # 失业保险金申领: paid to the social security card


def test_payout_account_is_suggested_from_the_social_security_card_and_can_be_changed(app, client, seeded):
    person = person_where(lambda p: "employer" in p.extra)
    who = verified_as(app, person)
    draft = create(client, who, service_code=UNEMPLOYMENT).get_json()
    body = share(client, who, draft).get_json()
    prov = body["provenance"]["payout_account.account_no"]
    assert prov["source"] == "exchange:social_security.insurance_record"
    assert prov["verified"] is True and prov["read_only"] is False
    shown = body["data"]["payout_account"]["account_no"]
    assert shown.startswith("*") and len(shown) >= 16  # masked: only the last four digits show
    assert body["data"]["unemployment"]["last_employer"] == person.extra["employer"]
    changed = patch(client, who, body, {"payout_account": {"account_no": "6222020200001234567"}})
    assert changed.status_code == 200, changed.get_json()
    after = changed.get_json()["provenance"]["payout_account.account_no"]
    assert after["source"] == "user" and after.get("replaced", "").startswith("exchange:")


def test_a_data_sharing_consent_is_given_by_json_true_only(app, client, seeded):
    person = married_home_owner()
    who = verified_as(app, person)
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    for looks_true in ("yes", 1):
        refused = share(client, who, draft, accepted=looks_true)
        assert refused.status_code == 422, refused.get_json()
    assert ledger(client, who)["items"] == []  # nothing was fetched on the citizen's behalf
    assert share(client, who, draft).status_code == 200


def test_a_value_shown_masked_stays_masked_when_the_next_draft_reuses_it(app, client, seeded):
    """The spouse's ID number came from the exchange and was only ever shown masked; a later
    draft that reuses the citizen's earlier answers (结婚登记 binds no source to the spouse) must
    not show it in full, to the citizen or to an app acting for them."""
    person = married_home_owner()
    who = verified_as(app, person)
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    shared = share(client, who, draft).get_json()
    assert person.spouse.id_number not in str(shared["data"])
    form = client.get(f"{URL}/{draft['id']}/form", headers=who["headers"]).get_json()
    saved = patch(client, who, shared, missing_data(form["schema"], shared["data"]))
    assert saved.status_code == 200, saved.get_json()
    for m in saved.get_json()["materials"]:
        if m["requirement"] == "required" and not m["satisfied"]:
            assert upload(client, who, draft["id"], m["id"], jpeg()).status_code == 201
    assert submit(client, who, get(client, who, draft["id"]).get_json()).status_code == 200

    later = create(client, who, service_code=MARRIAGE)
    assert later.status_code == 201, later.get_json()
    body = later.get_json()
    assert body["provenance"]["spouse.id_number"]["source"] == "application"  # reused, as offered
    assert body["data"]["spouse"]["id_number"] == shared["data"]["spouse"]["id_number"]  # masked
    assert person.spouse.id_number not in later.get_data(as_text=True)
    again = get(client, who, body["id"])
    assert person.spouse.id_number not in again.get_data(as_text=True)
    # The value itself is kept: the draft can be submitted without retyping it.
    typed = patch(client, who, again.get_json(), {"spouse": {"name": person.spouse.name}})
    assert typed.status_code == 200, typed.get_json()
    assert person.spouse.id_number not in typed.get_data(as_text=True)


def test_authorising_again_drops_values_the_earlier_records_filled(
    app, client, db_session, clock, exchange_sim, seeded, services
):
    """A repeated authorisation fetches everything afresh: a value the earlier record filled does
    not stay in the form, verified and read-only, when the department now refuses."""
    who, body, _ = _pending_property(app, client, exchange_sim)
    sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, body['id'])}", {"decision": "approve"})
    clock.advance(services.govdata.poll_seconds + 1)
    assert sharing.poll_pending(db_session, services.govdata) == 1
    filled = get(client, who, body["id"]).get_json()
    field = next(p for p, v in filled["provenance"].items() if v["source"].startswith("exchange:property"))
    again = share(client, who, filled)
    assert again.status_code == 200, again.get_json()
    sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, body['id'])}", {"decision": "deny"})
    clock.advance(services.govdata.poll_seconds + 1)
    assert sharing.poll_pending(db_session, services.govdata) == 1
    after = get(client, who, body["id"]).get_json()
    assert field not in after["provenance"], after["provenance"]
    group, leaf = field.split(".", 1)
    assert not (after["data"].get(group) or {}).get(leaf)
    # The citizen fills it in themselves now.
    typed = patch(client, who, after, {group: {leaf: "粤（2013）广州市不动产权第1805463号"}})
    assert typed.status_code == 200, typed.get_json()


def test_authorising_again_waits_until_the_earlier_authorisation_is_withdrawn(
    app, client, db_session, exchange_sim, seeded, services, monkeypatch
):
    """The earlier authorisation at the exchange is withdrawn before a new one is made; when the
    exchange cannot take the withdrawal now, the citizen is asked to try again, and no second
    authorisation is left that nothing would ever withdraw."""
    from domain.shared_data.models import SharingGrant
    from integrations.govdata.client import GovDataError

    who, body, first = _pending_property(app, client, exchange_sim)
    exchange = services.govdata.exchange
    real_revoke = exchange.revoke

    def busy(remote_id: str) -> None:
        raise GovDataError("busy", retryable=True, status=503)

    monkeypatch.setattr(exchange, "revoke", busy)
    before = sim(exchange_sim.url, "_sim/stats")["authorizations"]
    refused = share(client, who, body)
    assert refused.status_code == 503, refused.get_json()
    assert sim(exchange_sim.url, "_sim/stats")["authorizations"] == before  # no second one made
    db_session.rollback()
    assert db_session.scalars(select(SharingGrant.remote_id)).one() == first
    monkeypatch.setattr(exchange, "revoke", real_revoke)
    assert share(client, who, body).status_code == 200
    db_session.rollback()
    grant = db_session.scalars(select(SharingGrant)).one()
    assert grant.remote_id != first and grant.revoked_at is None
