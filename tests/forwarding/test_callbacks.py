"""Stage callbacks: signed, idempotent, in the province's order, never backwards; reconciliation."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from domain.applications.models import Application, ApplicationEvent, ApplicationNotice
from tests.forwarding.conftest import (
    apply_events,
    callback,
    event,
    forward,
    fresh,
    get,
    ops_headers,
    submitted,
    wait_for,
)


def _status(client, who, app_id):
    """What the citizen sees once the applier ran (read from the database: the test clock may
    outlive their token)."""
    from flask import current_app

    from domain.applications.models import Application

    apply_events(current_app)
    return fresh().get(Application, app_id).status


def _timeline(app_id):
    return [
        e.to_status
        for e in fresh().scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == app_id)
            .order_by(ApplicationEvent.seq)
        )
    ]


def test_the_province_walks_a_case_to_completion_over_real_callbacks(client, zhang, services, province):
    case = submitted(client, zhang)
    forward(services)
    sblsh = case["case_number"]
    province.post(f"cases/{sblsh}/accept")
    wait_for(lambda: _status(client, zhang, case["id"]) == "accepted")
    province.post(f"cases/{sblsh}/complete", {"result": "approved"})
    wait_for(lambda: _status(client, zhang, case["id"]) == "completed")
    shown = get(client, zhang, case["id"]).get_json()
    assert shown["result"] == "approved" and shown["province"]["state"] == "received"
    assert _timeline(case["id"]) == ["draft", "submitted", "received", "accepted", "completed"]
    kinds = [
        n.event_type
        for n in fresh().scalars(select(ApplicationNotice).order_by(ApplicationNotice.created_at))
    ]
    assert sorted(kinds) == ["case_accepted", "case_completed", "case_received"]


def test_a_supplement_request_names_what_to_add(client, zhang, services, province):
    case = submitted(client, zhang)
    forward(services)
    province.post(
        f"cases/{case['case_number']}/supplement", {"materials": ["insurance"], "reason": "照片不清晰"}
    )
    wait_for(lambda: _status(client, zhang, case["id"]) == "supplement_requested")
    shown = get(client, zhang, case["id"]).get_json()
    assert shown["supplement"]["materials"] == ["insurance"] and shown["supplement"]["reason"] == "照片不清晰"


def _province_seq(app_id):
    from flask import current_app

    from domain.applications.models import Application

    apply_events(current_app)
    return fresh().get(Application, app_id).province_seq


def test_the_same_event_twice_moves_the_case_once(client, app, zhang, services, province):
    case = submitted(client, zhang)
    forward(services)
    wait_for(lambda: _province_seq(case["id"]) >= 1)  # the simulator's own "received" (seq 1)
    accepted = event(case["case_number"], 2, "accepted", code="1")
    assert callback(client, app, accepted).get_json()["result"] == "stored"
    assert callback(client, app, accepted).get_json()["result"] == "duplicate"
    assert apply_events(app) == 1 and apply_events(app) == 0
    assert callback(client, app, accepted).get_json()["result"] == "duplicate"  # also once applied
    assert _timeline(case["id"]).count("accepted") == 1
    assert (
        fresh().scalar(
            select(func.count())
            .select_from(ApplicationNotice)
            .where(ApplicationNotice.event_type == "case_accepted")
        )
        == 1
    )


def test_an_unmapped_stage_with_a_long_code_is_kept_as_ignored_and_the_case_goes_on(
    client, app, zhang, services, province
):
    """A stage the profile does not map is recorded as ignored, its reason quoting the code the
    province sent: a long code must not stop the case at that event."""
    from domain.forwarding.models import ProvinceEvent

    case = submitted(client, zhang)
    forward(services)
    wait_for(lambda: _province_seq(case["id"]) >= 1)
    sblsh = case["case_number"]
    odd = callback(client, app, event(sblsh, 2, "odd_stage", code="C" * 190))
    assert odd.status_code == 200 and odd.get_json()["result"] == "stored"
    assert callback(client, app, event(sblsh, 3, "accepted", code="1")).get_json()["result"] == "stored"
    assert _status(client, zhang, case["id"]) == "accepted"
    ignored = (
        fresh()
        .scalars(
            select(ProvinceEvent).where(ProvinceEvent.application_id == case["id"], ProvinceEvent.seq == 2)
        )
        .one()
    )
    assert ignored.state == "ignored" and ignored.outcome.startswith("unmapped stage odd_stage/CCC")
    assert len(ignored.outcome) == 200


def test_events_out_of_order_wait_for_their_predecessor_and_never_move_backwards(
    client, app, zhang, services, province
):
    case = submitted(client, zhang)
    forward(services)  # seq 1 is the province's "received"; the simulator sent it
    wait_for(lambda: _province_seq(case["id"]) >= 1)
    sblsh = case["case_number"]
    done = callback(client, app, event(sblsh, 3, "completed", result_code="6"))
    assert done.status_code == 200 and done.get_json()["result"] == "stored"
    assert _status(client, zhang, case["id"]) == "received"  # seq 3 waits for seq 2
    accepted = callback(client, app, event(sblsh, 2, "accepted", code="1"))
    assert accepted.get_json()["result"] == "stored"
    assert _status(client, zhang, case["id"]) == "completed"
    # A late, older event (a second "accepted" with a seq already passed) changes nothing.
    late = callback(client, app, event(sblsh, 2, "accepted", code="1"))
    assert late.get_json()["result"] == "duplicate" and _status(client, zhang, case["id"]) == "completed"
    assert _timeline(case["id"]) == ["draft", "submitted", "received", "accepted", "completed"]


def test_bad_signature_stale_timestamp_replayed_nonce_unknown_case_and_junk(
    client, app, zhang, services, province
):
    case = submitted(client, zhang)
    ev = event(case["case_number"], 2, "accepted", code="1")
    import json

    from integrations.province import signing
    from tests.forwarding.conftest import province_credentials

    body = json.dumps(ev).encode()
    headers = signing.sign_request(province_credentials(app), "POST", "/v1/platform/callbacks", body)
    headers["Content-Type"] = "application/json"
    forged = dict(headers, **{signing.H_SIGNATURE: "0" * len(headers[signing.H_SIGNATURE])})
    resp = client.post("/v1/platform/callbacks", data=body, headers=forged)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "platform.unauthenticated"

    stale = callback(client, app, ev, now=time.time() - 3600)
    assert stale.status_code == 401 and "stale_timestamp" in stale.get_json()["error"]["message"]

    first = client.post("/v1/platform/callbacks", data=body, headers=headers)
    assert first.status_code == 200
    replay = client.post("/v1/platform/callbacks", data=body, headers=headers)
    assert replay.status_code == 401 and "replayed_nonce" in replay.get_json()["error"]["message"]

    unknown = callback(client, app, event("NO-SUCH-CASE", 1, "received"))
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "platform.unknown_case"
    junk = callback(client, app, {"sblsh": case["case_number"], "seq": "two"})
    assert junk.status_code == 400 and junk.get_json()["error"]["code"] == "platform.bad_event"
    en = client.post("/v1/platform/callbacks", data=body, headers=forged | {"Accept-Language": "en"})
    assert "did not verify" in en.get_json()["error"]["message"]
    assert callback(client, app, ev, path="/v1/platform/callbacks/other-province").status_code == 404


def test_reconciliation_repairs_a_missed_callback(client, app, zhang, services, province, clock):
    case = submitted(client, zhang)
    forward(services)
    province.post(f"cases/{case['case_number']}/accept", {"drop_callback": True})
    time.sleep(0.3)
    assert _status(client, zhang, case["id"]) == "received"

    clock.advance(2 * 3600)  # quiet for longer than RECONCILE_AFTER
    ops = ops_headers(app, client)
    key_headers = {"Idempotency-Key": "reconcile-1"}
    report = client.post("/admin/v1/forwarding/reconcile", headers=ops | key_headers).get_json()
    assert report["asked"] >= 1 and report["events_added"] >= 1
    assert _status(client, zhang, case["id"]) == "accepted"


def test_reconciliation_finds_a_receipt_yiwang_never_saw(client, app, zhang, services, province, clock):
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    body = None
    from domain.applications.models import ForwardingOutbox
    from domain.forwarding import payload

    session = fresh()
    row = session.scalar(select(ForwardingOutbox).where(ForwardingOutbox.application_id == case["id"]))
    body = payload.build(session, services.encryptor, fw.profile, row)
    session.commit()
    fw.client.intake(body)  # the province got it; the worker died before recording the receipt
    wait_for(lambda: _status(client, zhang, case["id"]) == "received")  # the province's own callback

    clock.advance(2 * 3600)
    ops = ops_headers(app, client)
    client.post("/admin/v1/forwarding/reconcile", headers=ops | {"Idempotency-Key": "reconcile-2"})
    row = fresh().scalar(select(ForwardingOutbox).where(ForwardingOutbox.application_id == case["id"]))
    assert row.state == "delivered" and row.receipt_no
    assert province.stats()["duplicates"] == 0
    unconfirmed = client.get("/admin/v1/forwarding/unconfirmed", headers=ops).get_json()
    assert unconfirmed["count"] == 0


def test_a_nonce_is_kept_in_the_database_until_it_can_no_longer_pass(client, app, zhang, province, clock):
    import json

    from core.redis import get_redis
    from domain.forwarding import events as province_events
    from domain.forwarding.models import ProvinceNonce
    from integrations.province import signing
    from tests.forwarding.conftest import fresh, province_credentials

    case = submitted(client, zhang)
    body = json.dumps(event(case["case_number"], 2, "accepted", code="1")).encode()
    headers = signing.sign_request(province_credentials(app), "POST", "/v1/platform/callbacks", body)
    headers["Content-Type"] = "application/json"
    assert client.post("/v1/platform/callbacks", data=body, headers=headers).status_code == 200
    get_redis().flushdb()  # the nonce does not live in Redis: a flush opens no door to a replay
    replay = client.post("/v1/platform/callbacks", data=body, headers=headers)
    assert replay.status_code == 401 and "replayed_nonce" in replay.get_json()["error"]["message"]

    nonce = headers[signing.H_NONCE]
    assert fresh().get(ProvinceNonce, ("reference", nonce)) is not None
    assert province_events.purge_nonces(fresh(), clock.now()) == 0  # still within its time to live
    clock.advance(signing.NONCE_TTL + 1)
    # An API host whose clock is behind the sweeper's may still take its timestamp: kept a while.
    assert province_events.purge_nonces(fresh(), clock.now()) == 0
    clock.advance(province_events.NONCE_CLOCK_SKEW)
    assert province_events.purge_nonces(fresh(), clock.now()) == 1
    assert fresh().get(ProvinceNonce, ("reference", nonce)) is None


def test_an_event_with_a_nul_character_anywhere_is_refused_and_the_case_goes_on(
    client, app, zhang, services, province
):
    """No database text column holds NUL: refused at the door (400), not a 500 at the insert
    nor an event the applier can never apply."""
    case = submitted(client, zhang)
    forward(services)
    wait_for(lambda: _province_seq(case["id"]) >= 1)
    sblsh = case["case_number"]
    for odd in (
        {"event_id": "a\x00b", "sblsh": sblsh, "seq": 2, "stage": "accepted", "code": "1"},
        event(sblsh, 2, "supplement", code="3", reason="a\x00b", materials=["insurance"]),
        event(sblsh, 2, "accepted", code="1", reason="\x00"),
        event(sblsh, 2, "received", version=1, receipt_no="R\x00"),
        event(sblsh, 2, "accepted", code="1", details={"nested": ["x\x00"]}),
    ):
        refused = callback(client, app, odd)
        assert refused.status_code == 400, refused.get_json()
        assert refused.get_json()["error"]["code"] == "platform.bad_event"
    accepted = callback(client, app, event(sblsh, 2, "accepted", code="1"))
    assert accepted.get_json()["result"] == "stored"
    assert _status(client, zhang, case["id"]) == "accepted"


def test_a_case_whose_event_cannot_be_applied_does_not_hold_up_the_others(
    client, app, zhang, services, province, monkeypatch, caplog
):
    from domain.forwarding import events

    cases = [submitted(client, zhang) for _ in range(2)]
    forward(services)
    for case in cases:
        wait_for(lambda case=case: _province_seq(case["id"]) >= 1)
    for case in cases:
        assert callback(client, app, event(case["case_number"], 2, "accepted", code="1")).status_code == 200
    real = events.apply_ready
    poisoned = min(c["id"] for c in cases)  # the one applied first, in id order

    def apply_ready(session, profile, application, waiting):
        if application.id == poisoned:
            raise RuntimeError("this case's event cannot be applied")
        return real(session, profile, application, waiting)

    monkeypatch.setattr(events, "apply_ready", apply_ready)
    assert apply_events(app) == 1  # the other case moved
    assert {c["id"]: _status(client, zhang, c["id"]) for c in cases} == {
        c["id"]: "received" if c["id"] == poisoned else "accepted" for c in cases
    }
    assert any(getattr(r, "alert", None) == "forwarding.event_apply_failed" for r in caplog.records)
    monkeypatch.setattr(events, "apply_ready", real)
    assert apply_events(app) == 1  # still waiting, applied once it can be
    assert _status(client, zhang, poisoned) == "accepted"


def test_cases_whose_events_always_fail_do_not_starve_newer_ones(
    client, app, zhang, services, province, clock
):
    """More failing cases than one pass takes: newer events still apply."""
    from domain.forwarding import events

    cases = [submitted(client, zhang) for _ in range(3)]
    forward(services)
    for case in cases:
        wait_for(lambda case=case: _province_seq(case["id"]) >= 1)
    stuck, fresh_case = cases[:2], cases[2]
    for case in stuck:
        assert callback(client, app, event(case["case_number"], 2, "completed")).status_code == 200  # no move
    real = events.apply_ready

    def apply_ready(session, profile, application, waiting):
        if application.id in {c["id"] for c in stuck}:
            raise RuntimeError("this case's event cannot be applied")
        return real(session, profile, application, waiting)

    events.apply_ready = apply_ready
    try:
        clock.advance(60)
        assert (
            callback(client, app, event(fresh_case["case_number"], 2, "accepted", code="1")).status_code
            == 200
        )
        events.apply_pending(fresh(), services.forwarding.profile(), limit=2)
    finally:
        events.apply_ready = real
    assert fresh().get(Application, fresh_case["id"]).status == "accepted"


def test_a_lost_database_stops_the_applier_instead_of_failing_each_case(
    client, app, zhang, services, province, monkeypatch, caplog
):
    import pytest
    from sqlalchemy.exc import OperationalError

    from domain.forwarding import events

    case = submitted(client, zhang)
    forward(services)
    wait_for(lambda: _province_seq(case["id"]) >= 1)
    assert callback(client, app, event(case["case_number"], 2, "accepted", code="1")).status_code == 200

    def away(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(events, "apply_ready", away)
    with pytest.raises(OperationalError):
        apply_events(app)
    assert not any(getattr(r, "alert", None) == "forwarding.event_apply_failed" for r in caplog.records)


def test_an_event_that_fails_to_store_for_another_reason_is_not_taken_for_a_duplicate(
    client, app, zhang, services, province, monkeypatch
):
    """Reconciliation counts such an event as an error and asks again next round; taken for a
    duplicate, the stage would have been lost for good."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from domain.forwarding import events
    from domain.forwarding.models import ProvinceEvent

    case = submitted(client, zhang)
    forward(services)
    wait_for(lambda: _province_seq(case["id"]) >= 1)
    session = fresh()
    flush = session.flush

    def failing(*args, **kwargs):
        if any(isinstance(obj, ProvinceEvent) for obj in session.new):
            cause = Exception("NOT NULL constraint failed: province_events.stage")
            raise IntegrityError("INSERT INTO province_events", {}, cause)
        flush(*args, **kwargs)

    monkeypatch.setattr(session, "flush", failing)
    accepted = event(case["case_number"], 2, "accepted", code="1")
    with pytest.raises(IntegrityError):
        events.receive(session, services.forwarding.profile(), accepted, source="reconcile")


def test_yiwang_signs_its_answers_to_the_province(client, app, zhang):
    """Both directions are signed (docs/province.md): a province that verifies answers would take
    an unsigned one for a stranger's and post the event again."""
    import json
    import time as _time

    from integrations.province import signing
    from tests.forwarding.conftest import province_credentials

    case = submitted(client, zhang)
    creds = province_credentials(app)
    taken = callback(
        client, app, event(case["case_number"], 1, "received", receipt_no="SJ1")
    )  # the fast path
    unknown = callback(client, app, event("NO-SUCH-CASE", 1, "received"))  # answered by the view
    assert (taken.status_code, unknown.status_code) == (200, 404)
    for resp in (taken, unknown):
        signing.verify_response(creds, resp.status_code, resp.headers, resp.data, now=_time.time())
    # The SMS vendor's receipts share the blueprint but are not the province's: not signed with
    # its key (anyone could collect such answers, and an SM2 signature costs the server).
    stranger = client.post("/v1/platform/sms-receipts/not-the-token", json=[])
    assert stranger.status_code == 401 and signing.H_SIGNATURE not in stranger.headers
    tampered = json.dumps({"code": "0", "result": "applied"}).encode()
    with pytest.raises(signing.SignatureError):
        signing.verify_response(creds, 200, taken.headers, tampered, now=_time.time())
