"""Delivery at its edges: rows failing for days, absurd Retry-After values, replays and cases the
province lost, and a worker that wakes up after its row was given to another."""

from __future__ import annotations

from sqlalchemy import select

from domain.applications.models import ForwardingOutbox
from domain.forwarding import reconcile
from domain.forwarding.delivery import backoff
from integrations.province.client import ProvinceError
from tests.forwarding.conftest import forward, fresh, key, submitted


def _row(app_id: str) -> ForwardingOutbox:
    return fresh().scalar(select(ForwardingOutbox).where(ForwardingOutbox.application_id == app_id))


def test_a_row_failing_for_days_still_backs_off(client, zhang, services, province, clock):
    """Past attempt 1024 the exponent no longer fits a float: the row must still be put back
    with the capped delay, not left 'sending' until its lease ends, every minute."""
    assert 150 <= backoff(1100, 1.0, 300.0, 0.5) <= 300
    case = submitted(client, zhang)
    session = fresh()
    session.get(ForwardingOutbox, _row(case["id"]).id).attempts = 1100
    session.commit()
    province.faults(error_rate=1.0)
    assert forward(services) == ["retrying"]
    row = _row(case["id"])
    assert row.state == "retrying" and 150 <= (row.next_attempt_at - clock.now()).total_seconds() <= 300


def test_a_retry_after_past_the_calendar_waits_until_the_rows_deadline(
    client, zhang, services, province, clock
):
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    [(row_id, attempt)] = fw.claim(fresh(), 10)
    refused = ProvinceError("rate limited", status=429, retryable=True, retry_after=1e12)
    fw._failed(fresh(), row_id, attempt, refused, quoted=[])  # what deliver() does with such an answer
    row = _row(case["id"])
    waited = (row.next_attempt_at - clock.now()).total_seconds()
    assert row.state == "retrying" and 0 < waited <= fw.profile.max_age + 1


def test_a_worker_waking_after_a_replay_cannot_record_over_the_new_claim(
    client, zhang, services, province, clock, ops
):
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    [(row_id, stalled)] = fw.claim(fresh(), 10)  # worker A stalls here
    clock.advance(fw.lease + 1)
    session = fresh()
    session.get(ForwardingOutbox, row_id).overrides = {"channel": 12}  # the province refuses it
    session.commit()
    [(_, second)] = fw.claim(fresh(), 10)
    assert fw.deliver(fresh(), row_id, second) == "dead"
    fixed = client.patch(f"/admin/v1/forwarding/rows/{row_id}", json={"overrides": None}, headers=ops | key())
    assert fixed.status_code == 200, fixed.get_json()
    replayed = client.post(f"/admin/v1/forwarding/rows/{row_id}/replay", headers=ops | key())
    assert replayed.status_code == 200, replayed.get_json()
    [(_, third)] = fw.claim(fresh(), 10)
    assert third != stalled
    assert fw.postpone(fresh(), row_id, stalled, 60, "stalled") == "superseded"  # A may not touch it
    assert fw.deliver(fresh(), row_id, third) == "delivered"
    assert _row(case["id"]).state == "delivered"


def test_a_case_the_province_lost_is_resent_with_a_fresh_maximum_age(
    client, zhang, services, province, clock
):
    submitted(client, zhang)
    assert forward(services) == ["delivered"]
    clock.advance(4 * 86400)  # in review for days: longer than the rows' maximum age
    province.post("reset")  # the province forgot the case
    deps = services.forwarding
    report = reconcile.reconcile(fresh(), deps.profile(), deps.client(), quiet_after=3600)
    assert report.resent == 1
    province.faults(error_rate=1.0)
    assert forward(services) == ["retrying"]  # a temporary failure, not a dead letter
    province.faults(error_rate=0.0)
    clock.advance(400)
    assert forward(services) == ["delivered"]


def test_reconciliation_reaches_every_quiet_case_however_many_there_are(
    app, client, zhang, services, province, clock
):
    """Asking changes nothing about a case: if every pass took the same oldest cases, a newer one
    whose acceptance callback was lost would never be asked about."""
    from domain.applications.models import Application
    from tests.forwarding.conftest import apply_events

    cases = [submitted(client, zhang) for _ in range(3)]
    forward(services)
    lost = cases[-1]
    province.post(f"cases/{lost['case_number']}/accept", {"drop_callback": True})
    clock.advance(2 * 3600)
    deps = services.forwarding
    asked = [
        reconcile.reconcile(fresh(), deps.profile(), deps.client(), quiet_after=3600, limit=2).cases
        for _ in range(2)
    ]
    assert sorted(asked[0] + asked[1]) == sorted(c["case_number"] for c in cases)  # each once
    apply_events(app)
    assert fresh().get(Application, lost["id"]).status == "accepted"
    again = reconcile.reconcile(fresh(), deps.profile(), deps.client(), quiet_after=3600, limit=2)
    assert again.asked == 0  # all asked within the hour


def test_a_database_lost_while_the_body_is_read_puts_the_row_back_not_dead(
    client, zhang, services, province, clock, monkeypatch
):
    """An operator should correct and replay a row only when the row itself is at fault."""
    from sqlalchemy.exc import OperationalError

    from domain.forwarding import payload

    case = submitted(client, zhang)
    real = payload.build

    def lost(*args, **kwargs):
        raise OperationalError("SELECT …", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(payload, "build", lost)
    monkeypatch.setattr(payload, "build_many", lost)
    [outcome] = forward(services)
    assert outcome.startswith("postponed") and _row(case["id"]).state == "retrying"
    monkeypatch.setattr(payload, "build", real)
    monkeypatch.undo()
    clock.advance(60)
    assert forward(services) == ["delivered"]


def test_a_case_whose_answer_cannot_be_used_does_not_stop_the_pass(
    client, zhang, services, province, clock, monkeypatch
):
    cases = [submitted(client, zhang) for _ in range(2)]
    forward(services)
    clock.advance(2 * 3600)
    real = reconcile._mark_received
    broken = cases[0]["case_number"]

    def fails_for_one(session, profile, app_id, received, report):
        if app_id == cases[0]["id"]:
            raise ValueError(f"a malformed answer about {broken}")
        return real(session, profile, app_id, received, report)

    monkeypatch.setattr(reconcile, "_mark_received", fails_for_one)
    deps = services.forwarding
    report = reconcile.reconcile(fresh(), deps.profile(), deps.client(), quiet_after=3600)
    assert report.errors == 1 and cases[1]["case_number"] in report.cases


def test_one_case_the_province_cannot_answer_does_not_stop_reconciliation(
    app, client, zhang, services, province, clock, monkeypatch
):
    """The province's status query fails (retryable) for one case every time: that case goes to
    the back of the line, and the other quiet cases are still asked."""
    from domain.applications.models import Application

    a = submitted(client, zhang)
    b = submitted(client, zhang)
    forward(services)
    clock.advance(2 * 3600)
    profile, prov = services.forwarding.profile(), services.forwarding.client()
    first = reconcile.candidates(fresh(), profile, quiet_after=3600, limit=200)[0]
    real = prov.status

    def status(sblsh):
        if sblsh == first:
            raise ProvinceError("HTTP 503", retryable=True, status=503)
        return real(sblsh)

    monkeypatch.setattr(prov, "status", status)
    for _ in range(3):
        reconcile.reconcile(fresh(), profile, prov, quiet_after=3600)
        clock.advance(3601)
    other = b if first == a["case_number"] else a
    assert fresh().get(Application, other["id"]).province_checked_at is not None, (
        "the other case was never asked"
    )


def test_a_correction_replacing_the_form_with_a_list_is_refused(app, client, zhang, services, monkeypatch):
    """A list or text for `form` jammed the row after a replay (the refusal could not be recorded,
    the row went out again every lease): refused at the correction."""
    from tests.forwarding.conftest import ops_headers

    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()

    def refuse(body):
        raise ProvinceError("表单（form）格式有误", retryable=False, status=400, code="E4001")

    monkeypatch.setattr(fw.client, "intake", refuse)
    assert forward(services, forwarder=fw) == ["dead"]
    row_id = fresh().scalar(select(ForwardingOutbox.id).where(ForwardingOutbox.application_id == case["id"]))
    ops = ops_headers(app, client)
    for bad in ([{"bank": "icbc"}], "bank=icbc"):
        fixed = client.patch(
            f"/admin/v1/forwarding/rows/{row_id}", json={"overrides": {"form": bad}}, headers=ops | key()
        )
        assert fixed.status_code == 422, fixed.get_json()
    assert fresh().get(ForwardingOutbox, row_id).overrides in (None, {})


def test_a_retry_after_given_as_an_http_date_is_honoured(app, client, zhang, services, clock):
    """A maintenance gateway answering 503 with `Retry-After: <HTTP date>` half an hour ahead."""
    import dataclasses
    import time
    from email.utils import formatdate

    from flask import Flask, Response

    from domain.forwarding.delivery import Forwarder
    from integrations.province.client import ProvinceClient
    from integrations.simulator_server import ThreadedSimulator

    gateway = Flask("maintenance_gateway")

    @gateway.post("/gov/v1/intake")
    def intake():
        return Response(
            "maintenance", status=503, headers={"Retry-After": formatdate(time.time() + 1800, usegmt=True)}
        )

    server = ThreadedSimulator(gateway).start()
    try:
        case = submitted(client, zhang)
        profile = dataclasses.replace(services.forwarding.profile(), base_url=server.url.rstrip("/"))
        fw = Forwarder(profile=profile, client=ProvinceClient(profile), encryptor=services.encryptor)
        assert forward(services, forwarder=fw) == ["retrying"]
    finally:
        server.stop()
    row = fresh().scalar(select(ForwardingOutbox).where(ForwardingOutbox.application_id == case["id"]))
    wait = (row.next_attempt_at - clock.now()).total_seconds()
    assert wait >= 1700, f"retried after {wait:.1f} s"


def test_a_gap_in_the_provinces_events_is_asked_about_within_minutes_not_an_hour(
    app, client, zhang, services, province, clock
):
    """While an event waits for its predecessor the citizen can neither withdraw nor resubmit:
    the case is asked about at the first pass after GAP_AFTER, even if it was asked (as a quiet
    case) shortly before the gap opened; a gap already asked about rotates with the others."""
    from tests.forwarding.conftest import callback, event

    case = submitted(client, zhang)
    forward(services)
    profile = services.forwarding.profile()
    clock.advance(2 * 3600)
    assert reconcile.candidates(fresh(), profile, quiet_after=3600, limit=200) == [case["case_number"]]
    reconcile.reconcile(fresh(), profile, services.forwarding.client(), quiet_after=3600)  # asked, quiet
    clock.advance(600)
    assert callback(client, app, event(case["case_number"], 3, "accepted", code="1")).status_code == 200
    clock.advance(60)
    assert reconcile.candidates(fresh(), profile, quiet_after=3600, limit=200) == []  # a reordering, maybe
    clock.advance(reconcile.GAP_AFTER)
    assert reconcile.candidates(fresh(), profile, quiet_after=3600, limit=200) == [case["case_number"]]
    reconcile.reconcile(fresh(), profile, services.forwarding.client(), quiet_after=3600)
    clock.advance(300)
    assert reconcile.candidates(fresh(), profile, quiet_after=3600, limit=200) == []  # asked: its turn


def test_an_answer_about_another_case_moves_nothing(
    app, client, zhang, services, province, clock, monkeypatch
):
    """The status answer names the case it describes: another case's record (a mix-up on the
    province's side) must not mark this case's submission received."""
    case = submitted(client, zhang)
    other = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    province.faults(error_rate=1.0)
    assert sorted(forward(services, forwarder=fw)) == ["retrying", "retrying"]
    province.faults(error_rate=0.0)
    session = fresh()
    other_row = session.scalar(select(ForwardingOutbox).where(ForwardingOutbox.application_id == other["id"]))
    from domain.forwarding import payload

    fw.client.intake(
        payload.build(session, services.encryptor, fw.profile, other_row)
    )  # only the other arrived
    session.commit()
    prov = services.forwarding.client()
    real = prov.status
    monkeypatch.setattr(prov, "status", lambda sblsh: real(other["case_number"]))  # always the other's record
    clock.advance(2 * 3600)
    report = reconcile.reconcile(fresh(), services.forwarding.profile(), prov, quiet_after=3600)
    rows = {r.application_id: r.state for r in fresh().scalars(select(ForwardingOutbox))}
    assert rows[case["id"]] == "retrying", report
    assert report.errors >= 1
