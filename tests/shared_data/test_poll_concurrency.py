"""The sweeper's poll of pending shared-data records and a citizen acting on the same draft at
once: the poll locks the application as every other write does, so nothing the citizen was told
succeeded is overwritten, and a submitted case is never changed by a late answer."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from domain.applications.models import ApplicationMaterial
from domain.shared_data import service as sharing
from domain.shared_data.models import SharedRecord
from tests.api.v1.applications.conftest import create, get, jpeg, patch, submit, upload
from tests.concurrency import Competing
from tests.shared_data.conftest import person_where, sim, verified_as
from tests.shared_data.test_sharing_flow import PROPERTY_QUERY, share

WAIT = 1.5  # seconds a citizen's request is given to finish while the poll holds the draft


def _approved_and_due(app: Any, client: Any, db_session: Any, exchange_sim: Any, clock: Any, services: Any):
    """A complete property-query draft whose register record the exchange has just approved."""
    who = verified_as(app, person_where(lambda p: "property" in p.extra))
    draft = share(client, who, create(client, who, service_code=PROPERTY_QUERY).get_json()).get_json()
    ticket = db_session.scalar(
        select(SharedRecord.ticket).where(
            SharedRecord.application_id == draft["id"], SharedRecord.status == "pending"
        )
    )
    db_session.rollback()
    sim(exchange_sim.url, f"_sim/tickets/{ticket}", {"decision": "approve"})
    assert (
        patch(
            client, who, draft, {"property_query": {"query_type": "holdings", "purpose": "other"}}
        ).status_code
        == 200
    )
    for material in ("id_card", "register"):
        assert upload(client, who, draft["id"], material, jpeg()).status_code == 201
    clock.advance(services.govdata.poll_seconds + 1)
    return who, get(client, who, draft["id"]).get_json()


def _poll(app: Any, services: Any) -> int:
    from core.db import db

    with app.app_context():
        try:
            return sharing.poll_pending(db.session(), services.govdata)
        finally:
            db.remove()


def _while_the_poll_applies(app: Any, services: Any, monkeypatch: Any, action: Any) -> tuple[int, dict]:
    """Poll, and run `action(client)` in another thread once the poll is applying its answer;
    returns the poll's count and what the action got, and whether it had to wait."""
    got: dict[str, Any] = {}
    original = sharing._apply

    def applying(*args: Any, **kwargs: Any) -> Any:
        if "other" not in got:
            got["other"] = Competing(app, action, wait=WAIT)
            got["waited"] = got["other"].waited
        return original(*args, **kwargs)

    monkeypatch.setattr(sharing, "_apply", applying)
    resolved = _poll(app, services)
    got["answer"] = got["other"].result()
    return resolved, got


def test_a_patch_during_the_poll_waits_and_then_sees_the_new_revision(
    app, client, db_session, exchange_sim, clock, services, seeded, monkeypatch
):
    who, draft = _approved_and_due(app, client, db_session, exchange_sim, clock, services)
    resolved, got = _while_the_poll_applies(
        app, services, monkeypatch, lambda c: patch(c, who, draft, {"applicant": {"phone": "13800000000"}})
    )
    assert resolved == 1 and got["waited"], "the PATCH went through while the poll held the draft"
    # It was sent against the revision the poll replaced: refused, so the phone reloads and
    # sees the filled register data; nothing it was told succeeded is lost.
    assert got["answer"].status_code == 412
    after = get(client, who, draft["id"]).get_json()
    assert after["revision"] == draft["revision"] + 1
    assert any(v["source"] == "exchange:property.real_estate_register" for v in after["provenance"].values())


def test_a_submission_during_the_poll_is_judged_on_the_filled_draft_and_not_changed_after(
    app, client, db_session, exchange_sim, clock, services, seeded, monkeypatch
):
    who, draft = _approved_and_due(app, client, db_session, exchange_sim, clock, services)
    resolved, got = _while_the_poll_applies(app, services, monkeypatch, lambda c: submit(c, who, draft))
    assert resolved == 1 and got["waited"]
    answer = got["answer"]
    assert answer.status_code == 200, answer.get_json()
    after = get(client, who, draft["id"]).get_json()
    assert after["status"] == "submitted" and after["provenance"] == answer.get_json()["provenance"]
    assert any(v["source"] == "exchange:property.real_estate_register" for v in after["provenance"].values())


def test_two_sweepers_polling_at_once_share_the_records(
    app, client, db_session, exchange_sim, clock, services, seeded
):
    _, draft = _approved_and_due(app, client, db_session, exchange_sim, clock, services)
    start, results = threading.Barrier(2), []

    def sweeper() -> None:
        start.wait()
        try:
            results.append(_poll(app, services))
        except Exception as exc:  # the assertion below names it
            results.append(exc)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results, key=str) == [0, 1], results
    shared = db_session.scalars(
        select(ApplicationMaterial).where(
            ApplicationMaterial.application_id == draft["id"], ApplicationMaterial.kind == "shared"
        )
    ).all()
    db_session.rollback()
    assert len(shared) == 1


def test_an_answer_after_a_new_consent_is_applied_and_one_bad_record_holds_up_no_other(
    app, client, db_session, exchange_sim, clock, services, seeded, monkeypatch
):
    """A new consent fetches the dataset afresh, and its answer is news again (its notice used
    to collide with the first one's and fail every pass). A record that cannot be applied is
    logged and left; the others in the pass are applied."""
    from domain.applications.models import ApplicationNotice
    from tests.shared_data.test_sharing_flow import _pending_property, _ticket

    who, body, _ = _pending_property(app, client, exchange_sim)
    sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, body['id'])}", {"decision": "approve"})
    db_session.rollback()
    clock.advance(services.govdata.poll_seconds + 1)
    assert _poll(app, services) == 1
    draft = get(client, who, body["id"]).get_json()
    assert share(client, who, draft).status_code == 200  # again: the record is fetched afresh
    sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, body['id'])}", {"decision": "approve"})
    db_session.rollback()
    other_who = who  # a second draft of the same citizen
    other = share(client, who, create(client, who, service_code=PROPERTY_QUERY).get_json()).get_json()
    sim(exchange_sim.url, f"_sim/tickets/{_ticket(db_session, other['id'])}", {"decision": "approve"})
    db_session.rollback()
    clock.advance(services.govdata.poll_seconds + 1)
    real = sharing._resolved

    def failing_for_the_first(session: Any, deps: Any, row: Any, app_row: Any, now: Any) -> None:
        if app_row.id == other["id"]:
            raise ValueError("cannot be applied")
        real(session, deps, row, app_row, now)

    monkeypatch.setattr(sharing, "_resolved", failing_for_the_first)
    assert _poll(app, services) == 1  # the re-consented draft's answer; the other one failed alone
    monkeypatch.undo()
    notices = db_session.scalars(
        select(ApplicationNotice.event_type).where(ApplicationNotice.application_id == body["id"])
    ).all()
    statuses = dict(
        db_session.execute(select(SharedRecord.application_id, SharedRecord.status).where(
            SharedRecord.application_id.in_([body["id"], other["id"]])
        )).all()
    )  # fmt: skip
    db_session.rollback()
    assert notices == ["shared_data_ready", "shared_data_ready"]
    assert statuses == {body["id"]: "found", other["id"]: "pending"}  # asked again next time
    clock.advance(services.govdata.poll_seconds + 1)
    assert (
        _poll(app, services) == 1
        and get(client, other_who, other["id"]).get_json()["revision"] > other["revision"]
    )
