"""The forwarder's batched steps give the same outcomes as delivering row by row."""

from __future__ import annotations

from sqlalchemy import select, update

from core.audit import AuditEvent
from core.db import db
from domain.applications.models import Application, ApplicationEvent, ForwardingOutbox
from domain.forwarding import batches, payload
from tests.forwarding.conftest import fresh, get, submitted


def _events(app_id: str) -> list[str]:
    return list(
        fresh().scalars(
            select(ApplicationEvent.to_status)
            .where(ApplicationEvent.application_id == app_id)
            .order_by(ApplicationEvent.seq)
        )
    )


def test_a_batch_is_built_as_row_by_row_and_recorded_in_one_go(client, zhang, li, services, province):
    cases = [submitted(client, zhang), submitted(client, li)]
    fw = services.forwarding.forwarder()
    claimed = fw.claim(fresh(), 10)
    assert len(claimed) == 2

    built, skipped = batches.prepare(fw, fresh(), claimed)
    assert skipped == [] and [b[:2] for b in built] == claimed
    session = fresh()
    for row_id, _, body in built:
        alone = payload.build(session, services.encryptor, fw.profile, session.get(ForwardingOutbox, row_id))
        assert body == alone  # the same body, personal data included, as the one-row path
    session.rollback()
    audits = fresh().scalars(
        select(AuditEvent.target_id).where(AuditEvent.action == "application.forwarded_personal_data")
    )
    assert {c["id"] for c in cases} <= set(audits)

    sent = [(row_id, attempt, fw.client.intake(body)) for row_id, attempt, body in built]
    assert batches.record(fw, fresh(), sent) == ["delivered", "delivered"]
    assert province.stats()["received"] == 2
    for case in cases:
        seen = get(client, zhang if case is cases[0] else li, case["id"]).get_json()
        assert seen["status"] == "received" and seen["province"]["receipt_no"]
        assert _events(case["id"])[-1] == "received"


def test_a_row_whose_lease_moved_on_is_superseded_and_the_rest_recorded(
    client, zhang, li, services, province
):
    cases = [submitted(client, zhang), submitted(client, li)]
    fw = services.forwarding.forwarder()
    built, _ = batches.prepare(fw, fresh(), fw.claim(fresh(), 10))
    sent = [(row_id, attempt, fw.client.intake(body)) for row_id, attempt, body in built]
    # Meanwhile the first row's lease ended and another worker took it (attempt 2).
    session = fresh()
    session.execute(update(ForwardingOutbox).where(ForwardingOutbox.id == sent[0][0]).values(attempts=2))
    session.commit()

    assert batches.record(fw, fresh(), sent) == ["superseded", "delivered"]
    rows = {r.id: r for r in fresh().scalars(select(ForwardingOutbox))}
    assert rows[sent[0][0]].state == "sending" and rows[sent[1][0]].state == "delivered"
    statuses = {a.id: a.status for a in fresh().scalars(select(Application))}
    first = rows[sent[0][0]].application_id
    other = next(c["id"] for c in cases if c["id"] != first)
    assert statuses[first] == "submitted" and statuses[other] == "received"


def test_a_row_that_cannot_be_built_is_a_dead_letter_and_the_others_go(client, zhang, li, services, province):
    cases = [submitted(client, zhang), submitted(client, li)]
    fw = services.forwarding.forwarder()
    claimed = fw.claim(fresh(), 10)
    broken = fresh().get(ForwardingOutbox, claimed[0][0])
    # Its form data no longer decrypts (a key removed too early, say).
    session = fresh()
    session.execute(
        update(Application).where(Application.id == broken.application_id).values(data_enc="gone:AAAA")
    )
    session.commit()
    db.session.remove()

    built, skipped = batches.prepare(fw, fresh(), claimed)
    assert skipped == ["dead"] and [b[0] for b in built] == [claimed[1][0]]
    dead = fresh().get(ForwardingOutbox, broken.id)
    assert dead.state == "dead" and "cannot build the request" in dead.last_error
    assert len(cases) == 2
