"""The certificate wallet: listed and shown masked, revealed with audit, presented once by QR code."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from tests.domain.operators.factories import admin_headers, make_operator
from tests.shared_data.conftest import REGISTRY, certs, person_where, sim, verified_as

ID_CARD = "11100000000019713D001"
DRIVING = "11100000000019713D003"
BIRTH = "11100000000014303H001"
W = "/v1/certificates"


@pytest.fixture
def hall_officer(app, client) -> dict:
    return admin_headers(client, make_operator(app, username="hall-1", roles=("hall_officer",)))


def holder_of_valid_id() -> Any:
    return person_where(lambda p: any(c.state == "01" for c in certs(p, ID_CARD)) and p.children)


def wallet(client: Any, who: dict) -> list[dict]:
    resp = client.get(W, headers=who["headers"])
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["certificates"]


def of_type(items: list[dict], type_code: str) -> dict:
    return next(c for c in items if c["type_code"] == type_code and c["own"])


def present(client: Any, who: dict, cert_id: str) -> Any:
    return client.post(f"{W}/{cert_id}/presentations", headers=who["headers"])


def verify(client: Any, headers: dict, token: str) -> Any:
    return client.post("/v1/certificate-verifications", json={"token": token}, headers=headers)


def test_wallet_lists_own_and_childrens_certificates_masked(app, client):
    person = holder_of_valid_id()
    who = verified_as(app, person)
    items = wallet(client, who)
    expected = {c.identifier for c in REGISTRY.of(person.id_number)}
    assert {c["identifier"] for c in items} == expected
    card = of_type(items, ID_CARD)
    assert card["number"] != person.id_number and "*" in card["number"]
    assert card["holder_name"] != person.name and card["usable"] is True
    assert card["state"] == "01" and card["state_name"] == "有效"
    kids = [c for c in items if not c["own"]]
    assert kids and all(c["type_code"] in (BIRTH, "11100000000014303H002") for c in kids)
    english = client.get(W, headers=who["headers"] | {"Accept-Language": "en"}).get_json()["certificates"]
    assert of_type(english, ID_CARD)["state_name"] == "Valid"


def test_reveal_shows_full_data_to_the_owner_and_is_audited(app, client, db_session):
    person = holder_of_valid_id()
    who = verified_as(app, person)
    card = of_type(wallet(client, who), ID_CARD)
    masked = client.get(f"{W}/{card['id']}", headers=who["headers"]).get_json()
    assert "data" not in masked and masked["number"] == card["number"]
    full = client.get(f"{W}/{card['id']}?reveal=true", headers=who["headers"]).get_json()
    assert full["number"] == person.id_number and full["holder_name"] == person.name
    assert full["data"]["ethnicity"] == person.ethnicity
    events = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "certificate.reveal")).all()
    assert [e.target_id for e in events] == [card["id"]]


def test_certificate_file_comes_from_the_library(app, client):
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    pdf = client.get(f"{W}/{card['id']}/file", headers=who["headers"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")
    ofd = client.get(f"{W}/{card['id']}/file?format=ofd", headers=who["headers"])
    assert ofd.status_code == 200 and ofd.data[:2] == b"PK"
    bad = client.get(f"{W}/{card['id']}/file?format=docx", headers=who["headers"])
    assert bad.status_code == 422


def test_other_citizens_certificates_are_not_found(app, client):
    owner = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, owner), ID_CARD)
    other = verified_as(app, person_where(lambda p: p.adult, skip=7))
    for resp in (
        client.get(f"{W}/{card['id']}", headers=other["headers"]),
        client.get(f"{W}/{card['id']}/file", headers=other["headers"]),
        present(client, other, card["id"]),
    ):
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "certificate.not_found"


def test_unverified_citizen_has_no_wallet(client, citizen):
    resp = client.get(W, headers=citizen["headers"])
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "sharing.identity_required"


def test_presented_code_verifies_once_with_the_state_now(app, client, hall_officer):
    person = holder_of_valid_id()
    who = verified_as(app, person)
    card = of_type(wallet(client, who), ID_CARD)
    shown = present(client, who, card["id"])
    assert shown.status_code == 201, shown.get_json()
    token = shown.get_json()["token"]
    assert shown.get_json()["ttl"] <= 300
    checked = verify(client, hall_officer, token)
    assert checked.status_code == 200, checked.get_json()
    result = checked.get_json()
    assert result["valid"] is True and result["checked_live"] is True
    assert result["certificate"]["identifier"] == card["identifier"]
    assert result["certificate"]["holder_name"] == card["holder_name"]  # whose: masked name
    again = verify(client, hall_officer, token)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "certificate.presentation_used"
    ledger = client.get("/v1/me/data-access", headers=who["headers"]).get_json()["items"]
    assert ledger[0]["accessor"]["type"] == "operator" and ledger[0]["purpose"] == "亮证核验"
    # The decryption of the holder's name and ID number is the officer's read, audited as theirs.
    from core.db import db
    from domain.operators.models import Operator

    officer = db.session().scalar(select(Operator.id).where(Operator.username == "hall-1"))
    reads = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "pii.read")).all()
    checks = [e for e in reads if (e.details or {}).get("purpose") == "presentation-check"]
    assert [(e.actor_type, e.actor_id, e.target_id) for e in checks] == [
        ("operator", officer, who["account_id"])
    ]


def test_a_presentation_answers_in_the_callers_language(app, client):
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    shown = client.post(f"{W}/{card['id']}/presentations", headers=who["headers"] | {"Accept-Language": "en"})
    assert shown.status_code == 201, shown.get_json()
    assert shown.get_json()["certificate"]["state_name"] == "Valid"
    assert present(client, who, card["id"]).get_json()["certificate"]["state_name"] == "有效"  # Chinese first


def test_a_certificate_revoked_after_showing_is_reported_not_valid(app, client, ecert_sim, hall_officer):
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    sim(ecert_sim.url, f"_sim/certificates/{card['identifier']}/state", {"state": "03"})
    result = verify(client, hall_officer, token).get_json()
    assert result["valid"] is False and result["certificate"]["state"] == "03"
    assert result["certificate"]["state_name"] == "撤销"


def test_a_certificate_gone_from_the_library_is_scanned_not_valid_and_the_code_spent(
    app, client, hall_officer, services, monkeypatch, db_session
):
    """The library answers E404 (withdrawn) when the officer scans: the scan says not valid, the
    code is spent and the holder's ledger names the scan, as for any other state."""
    from domain.ledger.models import DataAccess
    from integrations.govdata.client import GovDataError

    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]

    def withdrawn(**_: Any) -> dict:
        raise GovDataError("no such certificate", retryable=False, status=404, code="E404")

    monkeypatch.setattr(services.govdata.ecert, "detail", withdrawn)
    scanned = verify(client, hall_officer, token)
    assert scanned.status_code == 200, scanned.get_json()
    assert scanned.get_json()["valid"] is False and scanned.get_json()["checked_live"] is True
    again = verify(client, hall_officer, token)
    assert again.status_code == 409  # spent
    db_session.rollback()
    purposes = db_session.scalars(
        select(DataAccess.purpose).where(DataAccess.account_id == who["account_id"])
    )
    assert "亮证核验" in list(purposes)


def test_forged_expired_and_foreign_codes_are_refused(app, client, clock, hall_officer):
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    other = of_type(wallet(client, who), "11100000000019713D002")
    claims["cid"] = other["id"]  # point the code at another certificate: the signature no longer holds
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = verify(client, hall_officer, f"{header}.{forged_payload}.{signature}")
    assert (
        forged.status_code == 422 and forged.get_json()["error"]["code"] == "certificate.presentation_invalid"
    )
    garbage = verify(client, hall_officer, "x" * 40)
    assert garbage.status_code == 422
    # A citizen's own login token is a valid signature for another audience: still not a code.
    alien = verify(client, hall_officer, who["access_token"])
    assert (
        alien.status_code == 422 and alien.get_json()["error"]["code"] == "certificate.presentation_invalid"
    )
    clock.advance(301)
    late = verify(client, hall_officer, token)
    assert late.status_code == 422 and late.get_json()["error"]["code"] == "certificate.presentation_expired"


def test_only_hall_officers_verify(app, client):
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    as_citizen = verify(client, who["headers"], token)
    assert as_citizen.status_code == 401
    editor = admin_headers(client, make_operator(app, username="editor-1", roles=("catalog_editor",)))
    assert verify(client, editor, token).status_code == 403


def test_a_suspended_certificate_cannot_be_shown(app, client):
    person = person_where(lambda p: any(c.state == "02" for c in certs(p, DRIVING)))
    who = verified_as(app, person)
    licence = of_type(wallet(client, who), DRIVING)
    assert licence["usable"] is False
    resp = present(client, who, licence["id"])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "certificate.not_valid"
    assert "暂扣" in resp.get_json()["error"]["message"]


def test_an_authorised_third_party_scanner_verifies_and_is_named_in_the_ledger(app, client):
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    bank = admin_headers(
        client, make_operator(app, username="icbc-gz-counter", roles=("certificate_verifier",))
    )
    result = verify(client, bank, token)
    assert result.status_code == 200 and result.get_json()["valid"] is True
    entry = client.get("/v1/me/data-access", headers=who["headers"]).get_json()["items"][0]
    assert entry["accessor"]["type"] == "verifier" and "icbc-gz-counter" in entry["accessor"]["name"]
    # The scanner's role opens nothing else.
    check_in = client.post("/admin/v1/appointments/check-in", json={"code": "x" * 20}, headers=bank)
    assert check_in.status_code == 403


def test_when_the_library_is_down_the_wallet_shows_the_last_states_and_shows_nothing_at_counters(
    app, client, services, monkeypatch
):
    who = verified_as(app, holder_of_valid_id())
    before = wallet(client, who)
    monkeypatch.setattr(services.govdata.ecert, "base_url", "http://127.0.0.1:9/")
    resp = client.get(W, headers=who["headers"])
    assert resp.status_code == 200 and resp.get_json()["stale"] is True
    assert [c["identifier"] for c in resp.get_json()["certificates"]] == [c["identifier"] for c in before]
    # A code for a counter needs the state now: no code while the library cannot say.
    card = of_type(before, ID_CARD)
    refused = present(client, who, card["id"])
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "sharing.source_unavailable"


def test_a_certificate_expired_by_beijing_date_is_not_usable(app, client, clock):
    """Valid until the 5th means expired from 00:00 Beijing time on the 6th (16:00 UTC on the
    5th): at 07:00 Beijing on the 6th it may not be shown at a counter."""
    from datetime import UTC, datetime, time

    from tests.shared_data.conftest import POPULATION

    person, cert = min(
        (
            (p, c)
            for p in POPULATION.people.values()
            for c in REGISTRY.of(p.id_number)
            if c.state == "01" and c.valid_until and c.holder_id == p.id_number
        ),
        key=lambda pc: pc[1].valid_until,
    )
    clock._t = datetime.combine(cert.valid_until, time(23, 0), tzinfo=UTC).timestamp()  # 07:00 next day
    who = verified_as(app, person)
    card = next(c for c in wallet(client, who) if c["identifier"] == cert.identifier)
    assert card["usable"] is False
    assert present(client, who, card["id"]).status_code == 409


def test_two_first_opens_at_once_both_show_the_wallet(app, client, monkeypatch):
    """The mini-program and the app open an empty wallet at the same moment (or a double tap):
    both store the same certificates; neither gets an error."""
    import threading

    from core.db import db

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: the second open waits for the first (no race to show)")
    who = verified_as(app, holder_of_valid_id())
    ecert = app.extensions["yiwang"].govdata.ecert
    real, barrier = ecert.list, threading.Barrier(2, timeout=10)

    def listed(**kw: Any) -> Any:
        out = real(**kw)
        barrier.wait()  # both have read the empty wallet and the library's answer
        return out

    monkeypatch.setattr(ecert, "list", listed)
    answers: list[Any] = []

    def one() -> None:
        try:
            resp = app.test_client().get(W, headers=who["headers"])
            answers.append((resp.status_code, len(resp.get_json().get("certificates", []))))
        finally:
            db.remove()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [code for code, _ in answers] == [200, 200], answers
    monkeypatch.undo()
    assert answers[0][1] == answers[1][1] == len(wallet(client, who)) > 0


def test_a_certificate_removed_while_the_library_answers_is_a_clear_404(app, client, monkeypatch):
    """Another request's sync deleted the certificate (no longer in the library) while this one
    waited on the library: a 404, not a 500 on a row that is gone."""
    from core.db import db
    from domain.wallet.models import WalletCertificate
    from tests.concurrency import Competing

    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    ecert = app.extensions["yiwang"].govdata.ecert
    real = ecert.detail

    def remove(_http: Any) -> None:
        session = db.session()
        session.delete(session.get(WalletCertificate, card["id"]))
        session.commit()

    def slow(**kw: Any) -> Any:
        out = real(**kw)
        Competing(app, remove).result()
        return out

    monkeypatch.setattr(ecert, "detail", slow)
    for ask in (
        lambda: present(client, who, card["id"]),
        lambda: client.get(f"{W}/{card['id']}", headers=who["headers"]),
    ):
        resp = ask()
        assert resp.status_code == 404, resp.get_data(as_text=True)
        assert resp.get_json()["error"]["code"] == "certificate.not_found"
