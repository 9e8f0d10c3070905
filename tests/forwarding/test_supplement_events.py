"""What the province says about a case: supplements (with a reason alone, never given), news a
withdrawal must wait for, and when an event applied late happened."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from domain.applications.models import Application
from tests.api.v1.applications.conftest import jpeg, upload
from tests.forwarding.conftest import apply_events, callback, event, forward, fresh, submitted, wait_for

BEIJING = ZoneInfo("Asia/Shanghai")


def _seq(app, app_id):
    apply_events(app)
    return fresh().get(Application, app_id).province_seq


def _case(app, client, who, services):
    case = submitted(client, who)
    forward(services)
    wait_for(lambda: _seq(app, case["id"]) >= 1)  # the simulator's own "received" (seq 1)
    return case


def _send(app, client, case, seq, stage, **extra):
    assert (
        callback(client, app, event(case["case_number"], seq, stage, **extra)).get_json()["result"]
        == "stored"
    )
    apply_events(app)
    return fresh().get(Application, case["id"])


def test_a_supplement_asked_with_a_reason_alone_opens_what_the_citizen_may_correct(
    app, client, zhang, services, province
):
    case = _case(app, client, zhang, services)
    row = _send(app, client, case, 2, "supplement", code="3", reason="请补充说明申领原因")
    assert row.status == "supplement_requested"  # not dropped as "ignored"
    assert row.supplement["reason"] == "请补充说明申领原因"
    assert "ss_card_application.bank" in row.supplement["fields"]
    assert "applicant.name" not in row.supplement["fields"]  # verified: never the citizen's to change
    assert set(row.supplement["materials"]) == {"id_card", "insurance", "photo"}


def test_a_supplement_never_given_ends_the_case_before_and_after_acceptance(
    app, client, zhang, services, province
):
    before = _case(app, client, zhang, services)
    _send(app, client, before, 2, "supplement", code="3", materials=["insurance"])
    row = _send(app, client, before, 3, "not_accepted", code="4", reason="逾期未补正")
    assert row.status == "not_accepted" and row.completed_at is not None and row.due_on is None

    after = _case(app, client, zhang, services)
    _send(app, client, after, 2, "accepted", code="1")
    _send(app, client, after, 3, "supplement", code="3", materials=["insurance"])
    late = _send(app, client, after, 4, "not_accepted", code="4")  # accepted once: not "not accepted"
    assert late.status == "supplement_requested"
    row = _send(app, client, after, 5, "completed", result_code="1", reason="逾期未补正，不予许可")
    assert (row.status, row.result) == ("completed", "denied")


def test_a_withdrawal_waits_for_news_the_province_sent_but_yiwang_has_not_applied(
    app, client, zhang, services, province
):
    """The province accepted the case a moment ago; the applier has not run yet. Withdrawn now,
    the case would show 已撤回 while the province handles it, and ignore every later event."""
    from tests.api.v1.applications.conftest import error_code, key

    case = _case(app, client, zhang, services)
    receipt = event(case["case_number"], 3, "received")  # news that changes nothing here
    assert callback(client, app, receipt).get_json()["result"] == "stored"
    accepted = event(case["case_number"], 2, "accepted", code="1")
    assert callback(client, app, accepted).get_json()["result"] == "stored"  # kept, not applied yet
    url = f"/v1/applications/{case['id']}/withdraw"
    early = client.post(url, json={"reason": "不办了"}, headers=zhang["headers"] | key())
    assert early.status_code == 409 and error_code(early) == "application.province_update_pending"
    assert fresh().get(Application, case["id"]).status == "received"  # nothing written
    apply_events(app)
    late = client.post(url, json={"reason": "不办了"}, headers=zhang["headers"] | key())
    assert late.status_code == 409 and error_code(late) == "application.illegal_transition"
    assert fresh().get(Application, case["id"]).status == "accepted"


def test_an_event_applied_late_counts_from_when_it_happened(app, client, zhang, services, province, clock):
    """Accepted on a Monday evening, applied after a gap the next days: the ten working days
    run from the Monday, and the timeline says when the province accepted."""
    from sqlalchemy import select

    from core.clock import local_date
    from domain.applications.models import ApplicationEvent

    case = _case(app, client, zhang, services)
    happened = clock.now()
    clock.advance(days=2)
    occurred_at = happened.astimezone(BEIJING).isoformat()
    row = _send(app, client, case, 2, "accepted", code="1", occurred_at=occurred_at)
    assert row.status == "accepted" and row.clock_started_on == local_date(happened)
    at = fresh().scalar(
        select(ApplicationEvent.at).where(
            ApplicationEvent.application_id == case["id"], ApplicationEvent.to_status == "accepted"
        )
    )
    assert at == happened
    # A time from the future, or none that can be read, is taken as now.
    for seq, (stage, extra) in enumerate(
        [
            ("in_review", {"occurred_at": "2099-01-01T00:00:00+08:00"}),
            ("special", {"occurred_at": "下午三点"}),
        ],
        start=3,
    ):
        _send(app, client, case, seq, stage, **extra)
    times = (
        fresh()
        .scalars(
            select(ApplicationEvent.at).where(
                ApplicationEvent.application_id == case["id"],
                ApplicationEvent.to_status.in_(("in_review", "special_procedure")),
            )
        )
        .all()
    )
    assert times == [clock.now(), clock.now()]


def test_a_receipt_not_applied_yet_does_not_hold_up_a_withdrawal(app, client, zhang, services, province):
    from tests.api.v1.applications.conftest import key

    case = _case(app, client, zhang, services)
    assert callback(client, app, event(case["case_number"], 2, "received")).get_json()["result"] == "stored"
    done = client.post(f"/v1/applications/{case['id']}/withdraw", json={}, headers=zhang["headers"] | key())
    assert done.status_code == 200, done.get_json()


def test_a_resubmission_waits_for_the_provinces_closing_word_not_yet_applied(
    app, client, zhang, services, province
):
    """The supplement never came and the province closed the case a moment ago; the applier has
    not run yet. A resubmission overtaking that word left the case 已补正 for good."""
    from tests.api.v1.applications.conftest import error_code, key

    case = _case(app, client, zhang, services)
    _send(app, client, case, 2, "accepted", code="1")
    _send(app, client, case, 3, "supplement", code="3", materials=["insurance"])
    closing = event(case["case_number"], 4, "completed", result_code="1", reason="逾期未补正，不予许可")
    assert callback(client, app, closing).get_json()["result"] == "stored"  # kept, not applied yet
    url = f"/v1/applications/{case['id']}/submit"
    early = client.post(url, json={}, headers=zhang["headers"] | key())
    assert early.status_code == 409 and error_code(early) == "application.province_update_pending"
    assert fresh().get(Application, case["id"]).status == "supplement_requested"  # nothing written
    apply_events(app)
    row = fresh().get(Application, case["id"])
    assert (row.status, row.result) == ("completed", "denied")
    late = client.post(url, json={}, headers=zhang["headers"] | key())
    assert late.status_code == 409 and error_code(late) == "application.illegal_transition"


def test_the_provinces_closing_word_crossing_a_resubmission_still_closes_the_case(
    app, client, zhang, services, province
):
    """The citizen resubmits a moment before the province's closing word (a supplement never
    given, decided during review) arrives: the case is completed as decided, not 已补正 for good."""
    from tests.api.v1.applications.conftest import key

    case = _case(app, client, zhang, services)
    _send(app, client, case, 2, "accepted", code="1")
    _send(app, client, case, 3, "supplement", code="3", materials=["insurance"])
    assert upload(client, zhang, case["id"], "insurance", jpeg()).status_code == 201  # the supplement given
    done = client.post(f"/v1/applications/{case['id']}/submit", json={}, headers=zhang["headers"] | key())
    assert done.status_code == 200, done.get_json()
    row = _send(app, client, case, 4, "completed", result_code="1", reason="逾期未补正，不予许可")
    assert (row.status, row.result) == ("completed", "denied")


def test_a_closing_word_before_acceptance_is_not_a_completion(app, client, zhang, services, province):
    """Before acceptance a resubmitted case is never completed (it is 不予受理 or accepted first)."""
    from tests.api.v1.applications.conftest import key

    case = _case(app, client, zhang, services)
    _send(app, client, case, 2, "supplement", code="3", materials=["insurance"])
    assert upload(client, zhang, case["id"], "insurance", jpeg()).status_code == 201
    done = client.post(f"/v1/applications/{case['id']}/submit", json={}, headers=zhang["headers"] | key())
    assert done.status_code == 200, done.get_json()
    row = _send(app, client, case, 3, "completed", result_code="1")
    assert row.status == "resubmitted"


def _status_once_applied(app, app_id: str) -> str:
    apply_events(app)  # what the forwarders' applier does with the callbacks kept so far
    return fresh().get(Application, app_id).status


def test_the_simulator_closes_a_case_whose_supplement_is_never_given(app, client, zhang, services, province):
    """Its control API follows the same rule as yiwang: not accepted before acceptance, completed
    (denied) after it; the closing word reaches the case over the real callback path."""
    before = submitted(client, zhang)
    assert forward(services) == ["delivered"]
    sblsh = before["case_number"]
    province.post(f"cases/{sblsh}/supplement", {"materials": ["insurance"], "reason": "照片不清晰"})
    province.post(f"cases/{sblsh}/refuse", {"reason": "逾期未补正"})
    wait_for(lambda: _status_once_applied(app, before["id"]) == "not_accepted")

    after = submitted(client, zhang)
    assert forward(services) == ["delivered"]
    sblsh = after["case_number"]
    province.post(f"cases/{sblsh}/accept")
    province.post(f"cases/{sblsh}/supplement", {"materials": ["insurance"], "reason": "照片不清晰"})
    refused = province.http.post(f"{province.url}/_sim/cases/{sblsh}/refuse", json={})
    assert refused.status_code == 409  # accepted once: never "not accepted"
    province.post(f"cases/{sblsh}/complete", {"result": "denied"})
    wait_for(lambda: _status_once_applied(app, after["id"]) == "completed")
    assert fresh().get(Application, after["id"]).result == "denied"


def test_a_supplement_asked_with_a_reason_alone_is_resubmitted_without_a_change(
    app, client, zhang, services, province
):
    """What a reason alone asks for may lie outside the form (a paper original at the hall): the
    citizen may send the case back as it is."""
    from tests.api.v1.applications.conftest import key

    case = _case(app, client, zhang, services)
    row = _send(app, client, case, 2, "supplement", code="3", reason="请携带原件到窗口核验后再提交")
    assert "answered" not in row.supplement
    done = client.post(f"/v1/applications/{case['id']}/submit", json={}, headers=zhang["headers"] | key())
    assert done.status_code == 200 and done.get_json()["status"] == "resubmitted"


def test_a_province_supplement_naming_a_material_waits_for_it(app, client, zhang, services, province):
    from tests.api.v1.applications.conftest import key

    case = _case(app, client, zhang, services)
    _send(app, client, case, 2, "supplement", code="3", materials=["insurance"], reason="照片不清晰")
    refused = client.post(f"/v1/applications/{case['id']}/submit", json={}, headers=zhang["headers"] | key())
    assert refused.status_code == 422 and set(refused.get_json()["error"]["fields"]) == {
        "materials.insurance"
    }
