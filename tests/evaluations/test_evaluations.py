"""好差评: one rating per completed case, reasons for 差评, rectification with appeal, public figures."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from core.db import db
from domain.applications.models import Application
from domain.catalog.models import Department
from domain.evaluations import rectification, rectification_sweep
from domain.evaluations import service as evaluations
from domain.evaluations.models import Evaluation, RectificationTask
from tests.api.v1.applications.conftest import SS_CARD, li, seeded, zhang  # noqa: F401 - fixtures
from tests.domain.operators.factories import admin_headers, make_operator
from tests.forwarding.conftest import province, submitted, yiwang_http  # noqa: F401 - fixtures
from tests.oauth.conftest import bank, tokens_for  # noqa: F401 - fixtures


def _completed(client: Any, who: dict) -> str:
    case = submitted(client, who)
    session = db.session()
    session.get(Application, case["id"]).status = "completed"
    session.commit()
    return case["id"]


def rate(client: Any, who: dict, app_id: str, **body: Any) -> Any:
    return client.post(f"/v1/applications/{app_id}/evaluation", json=body, headers=who["headers"])


@pytest.fixture
def officer(app: Any, client: Any) -> dict:
    return admin_headers(client, make_operator(app, username="rectify-op", roles=("case_operator",)))


def test_one_rating_per_completed_case(client: Any, zhang: dict, li: dict) -> None:  # noqa: F811
    unfinished = submitted(client, zhang)["id"]
    early = rate(client, zhang, unfinished, level="满意")
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "evaluations.not_finished"
    app_id = _completed(client, zhang)
    first = rate(
        client, zhang, app_id, level="非常满意", indicators={"efficiency": "满意", "convenience": "非常满意"}
    )
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["rectification"] is None
    again = rate(client, zhang, app_id, level="满意")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "evaluations.already_rated"
    assert rate(client, li, app_id, level="满意").status_code == 404  # someone else's case


def test_bad_input_is_refused_with_paths(client: Any, zhang: dict) -> None:  # noqa: F811
    app_id = _completed(client, zhang)
    resp = rate(client, zhang, app_id, level="不满意", indicators={"speed": "满意", "efficiency": "好"})
    assert resp.status_code == 422
    assert set(resp.get_json()["error"]["fields"]) == {"reason", "indicators.speed", "indicators.efficiency"}
    assert rate(client, zhang, app_id, level="一般").status_code == 422
    assert rate(client, zhang, app_id, level="满意").status_code == 201  # nothing was written before


INVISIBLE = "\u200b\ufeff\u200b\u00ad"  # zero-width spaces, BOM, soft hyphen: nothing to read


def test_a_reason_of_invisible_characters_only_is_no_reason(
    client: Any,
    zhang: dict,  # noqa: F811
    officer: dict,
) -> None:
    app_id = _completed(client, zhang)
    blank = rate(client, zhang, app_id, level="非常不满意", reason=INVISIBLE)
    assert blank.status_code == 422 and set(blank.get_json()["error"]["fields"]) == {"reason"}, (
        blank.get_json()
    )
    assert rate(client, zhang, app_id, level="不满意", reason=INVISIBLE + "材料被退回两次").status_code == 201
    task_id = client.get("/admin/v1/rectifications?status=open", headers=officer).get_json()["items"][0]["id"]
    response = f"/admin/v1/rectifications/{task_id}/response"
    assert client.post(response, json={"response": INVISIBLE}, headers=officer).status_code == 422
    assert client.post(response, json={"response": "已改进"}, headers=officer).status_code == 200
    decide = f"/v1/applications/{app_id}/evaluation/decision"
    appeal = client.post(decide, json={"accept": False, "reason": INVISIBLE}, headers=zhang["headers"])
    assert appeal.status_code == 422 and set(appeal.get_json()["error"]["fields"]) == {"reason"}


def test_a_bad_rating_is_rectified_with_an_appeal_round(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officer: dict,
    clock: Any,
) -> None:
    app_id = _completed(client, zhang)
    made = rate(client, zhang, app_id, level="非常不满意", reason="窗口让我跑了三次").get_json()
    task = made["rectification"]
    assert task["status"] == "open" and task["rounds"] == 1
    listed = client.get("/admin/v1/rectifications?status=open", headers=officer).get_json()["items"]
    task_id = listed[0]["id"]
    body = {"response": "已约谈窗口人员并改进流程"}
    done = client.post(f"/admin/v1/rectifications/{task_id}/response", json=body, headers=officer)
    assert done.status_code == 200 and done.get_json()["status"] == "responded"
    decide = f"/v1/applications/{app_id}/evaluation/decision"
    no_reason = client.post(decide, json={"accept": False}, headers=zhang["headers"])
    assert no_reason.status_code == 422
    appeal = client.post(decide, json={"accept": False, "reason": "并未解决，联系电话13800138000"},
                         headers=zhang["headers"])  # fmt: skip
    assert appeal.get_json()["status"] == "appealed" and appeal.get_json()["rounds"] == 2
    # Both texts are stored encrypted (citizens write numbers and names into them); the citizen
    # reads their own reason, the operator the appeal, and that read is audited.
    session = db.session()
    stored = session.execute(select(Evaluation.reason_enc, RectificationTask.appeal_reason_enc).join(
        RectificationTask, RectificationTask.evaluation_id == Evaluation.id)).one()  # fmt: skip
    assert stored[0].startswith("v1.") and "窗口" not in stored[0]
    assert stored[1].startswith("v1.") and "13800138000" not in stored[1]
    assert made["reason"] == "窗口让我跑了三次"  # the citizen's own text, as written
    appealed = client.get("/admin/v1/rectifications?status=appealed", headers=officer).get_json()["items"]
    assert [t["appeal_reason"] for t in appealed] == ["并未解决，联系电话13800138000"]
    reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "evaluation.appeal_read")).all()
    assert [r.target_id for r in reads] == [task_id]
    client.post(
        f"/admin/v1/rectifications/{task_id}/response", json={"response": "已为您加急办理"}, headers=officer
    )
    closed = client.post(decide, json={"accept": True}, headers=zhang["headers"])
    assert closed.get_json()["status"] == "confirmed"
    figures = client.get(f"/v1/services/{SS_CARD}/ratings").get_json()
    assert figures["total"] == 1 and figures["bad"] == 1 and figures["bad_rectified"] == 1
    assert figures["levels"]["非常不满意"] == 1 and figures["satisfied_rate"] == 0


def test_the_citizen_reads_the_departments_response_before_deciding(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    li: dict,  # noqa: F811
    officer: dict,
    bank: dict,  # noqa: F811
    tokens_for: Any,  # noqa: F811
) -> None:
    app_id = _completed(client, zhang)
    url = f"/v1/applications/{app_id}/evaluation"
    unrated = client.get(url, headers=zhang["headers"])
    assert unrated.status_code == 404 and unrated.get_json()["error"]["code"] == "evaluations.not_rated"
    rate(client, zhang, app_id, level="不满意", reason="窗口让我跑了三次")
    waiting = client.get(url, headers=zhang["headers"])
    assert waiting.status_code == 200, waiting.get_json()
    assert waiting.get_json()["reason"] == "窗口让我跑了三次" and waiting.get_json()["level"] == "不满意"
    assert waiting.get_json()["rectification"]["status"] == "open"
    assert waiting.get_json()["rectification"]["response"] is None
    task_id = client.get("/admin/v1/rectifications?status=open", headers=officer).get_json()["items"][0]["id"]
    answer = {"response": "已约谈窗口人员，流程已改进"}
    client.post(f"/admin/v1/rectifications/{task_id}/response", json=answer, headers=officer)
    read = client.get(url, headers=zhang["headers"]).get_json()["rectification"]
    assert read["status"] == "responded" and read["response"] == "已约谈窗口人员，流程已改进"
    assert read["responded_at"] is not None and read["rounds"] == 1
    # …and is told so, once: they are to confirm or appeal it.
    from tests.notifications.conftest import run_notifier

    run_notifier(app)
    run_notifier(app)
    inbox = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
    told = [n for n in inbox if n["title"] == "您的评价已有整改回复"]
    assert len(told) == 1 and "确认或申诉" in told[0]["body"] and told[0]["application_id"] == app_id
    # Someone else's case is not found, as everywhere; a third-party app is refused, as on the
    # rating and the decision (no OAuth scope opens 好差评 to apps).
    theirs = client.get(url, headers=li["headers"])
    assert theirs.status_code == 404 and theirs.get_json()["error"]["code"] == "application.not_found"
    _, app_token = tokens_for(bank, scope="applications.read", citizen=zhang)
    via_app = client.get(url, headers={"Authorization": f"Bearer {app_token['access_token']}"})
    assert via_app.status_code == 403 and via_app.get_json()["error"]["code"] == "oauth.endpoint_not_allowed"


def test_overdue_rectifications_are_escalated(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
) -> None:
    app_id = _completed(client, zhang)
    due = rate(client, zhang, app_id, level="不满意", reason="等了很久").get_json()["rectification"]["due_on"]
    assert rectification_sweep.escalate_overdue(db.session(), clock.now()) == 0
    from datetime import date

    from domain.applications.deadlines import local_date

    while local_date(clock.now()) <= date.fromisoformat(due):  # past the fifth working day
        clock.advance(days=1)
    assert rectification_sweep.escalate_overdue(db.session(), clock.now()) == 1
    assert rectification_sweep.escalate_overdue(db.session(), clock.now()) == 0  # once per round
    db.session.commit()
    from tests.domain.operators.factories import admin_headers as relog

    fresh = relog(client, make_operator(app, username="rectify-op2", roles=("case_operator",)))
    overdue = client.get("/admin/v1/rectifications?overdue=true", headers=fresh).get_json()["items"]
    assert [t["due_on"] for t in overdue] == [due] and overdue[0]["escalated_at"]


def test_rectification_tasks_come_in_pages_each_once(
    client: Any,
    zhang: dict,  # noqa: F811
    officer: dict,
) -> None:
    for _ in range(3):
        assert (
            rate(client, zhang, _completed(client, zhang), level="不满意", reason="等了很久").status_code
            == 201
        )
    url = "/admin/v1/rectifications"
    first = client.get(url, query_string={"status": "open", "limit": 2}, headers=officer)
    assert first.status_code == 200, first.get_json()
    assert len(first.get_json()["items"]) == 2 and first.get_json()["next_cursor"]
    more = {"status": "open", "limit": 2, "cursor": first.get_json()["next_cursor"]}
    rest = client.get(url, query_string=more, headers=officer).get_json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    listed = [t["id"] for t in first.get_json()["items"] + rest["items"]]
    session = db.session()
    in_order = select(RectificationTask.id).order_by(
        RectificationTask.due_on, RectificationTask.created_at, RectificationTask.id
    )
    assert listed == list(session.scalars(in_order))  # all three, none twice, earliest due first
    bad = client.get(url, query_string={"cursor": "not-a-cursor"}, headers=officer)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "evaluations.bad_cursor"


def test_levels_map_to_each_provinces_numbers_only_at_the_boundary() -> None:
    assert (
        evaluations.to_number("非常满意", "gbt39046") == 1
        and evaluations.to_number("非常满意", "zhejiang") == 5
    )
    assert evaluations.from_number(1, "zhejiang") == "非常不满意"
    assert [evaluations.to_number(level, "gbt39046") for level in ("满意", "不满意")] == [2, 4]


def test_completed_cases_get_one_invitation_to_rate(app: Any, client: Any, zhang: dict, clock: Any) -> None:  # noqa: F811
    from domain.applications import transitions
    from domain.applications.models import ApplicationNotice
    from domain.evaluations import invitations

    case = submitted(client, zhang)
    session = db.session()
    application = session.get(Application, case["id"])
    application.status = "in_review"
    transitions.apply(
        session, application, "completed", actor_type="operator", actor_id="op", note=None, result="approved"
    )
    session.commit()
    assert invitations.invite(db.session(), clock.now()) == 0  # not yet: an hour after completion
    clock.advance(hours=2)
    assert invitations.invite(db.session(), clock.now()) == 1
    db.session.commit()
    assert invitations.invite(db.session(), clock.now()) == 0  # once
    kinds = [n.event_type for n in db.session.query(ApplicationNotice).filter_by(application_id=case["id"])]
    assert "evaluation_invite" in kinds


def test_an_evaluation_reaches_the_province_with_its_number(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    services: Any,
    province: Any,  # noqa: F811
) -> None:
    from rq import SimpleWorker

    from core.outbox.service import outbox
    from core.redis import get_redis
    from tests.forwarding.conftest import forward

    case = submitted(client, zhang)
    forward(services)  # the province has the case
    session = db.session()
    session.get(Application, case["id"]).status = "completed"
    session.commit()
    assert rate(client, zhang, case["id"], level="非常不满意", reason="材料被退回三次").status_code == 201
    SimpleWorker([outbox.queue()], connection=get_redis()).work(burst=True, with_scheduler=False)
    pushed = province.http.get(f"{province.url}/_sim/evaluations").json()["evaluations"]
    assert len(pushed) == 1 and pushed[0]["projectNo"] == case["case_number"]
    # GB/T 39046 numbering (the reference profile's): 5 = 非常不满意
    assert pushed[0]["satisfaction"] == 5 and pushed[0]["writingEvaluation"] == "材料被退回三次"


def test_department_figures_are_public_and_reminders_come_before_the_due_date(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
) -> None:
    app_id = _completed(client, zhang)
    made = rate(client, zhang, app_id, level="不满意", reason="等了很久").get_json()
    department = db.session.get(evaluations.Evaluation, made["id"]).department
    figures = client.get(f"/v1/departments/{department}/ratings").get_json()
    assert figures["total"] == 1 and figures["bad"] == 1
    assert rectification_sweep.due_for_reminder(db.session(), clock.now()) == []  # days before the due date
    due = db.session.get(evaluations.Evaluation, made["id"])
    task = rectification.task_of(db.session(), due.id)
    from domain.applications.deadlines import local_date

    while local_date(clock.now()) < task.due_on:  # Beijing dates, as the due date is
        clock.advance(days=1)
    reminded = rectification_sweep.due_for_reminder(db.session(), clock.now())
    assert [t.id for t in reminded] == [task.id]
    assert rectification_sweep.due_for_reminder(db.session(), clock.now()) == []  # once a day


def test_operators_tied_to_departments_rectify_only_their_departments_tasks(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    officer: dict,
) -> None:
    app_id = _completed(client, zhang)  # 社会保障卡申领: human_resources
    assert rate(client, zhang, app_id, level="不满意", reason="等了两个小时").status_code == 201
    police = admin_headers(client, make_operator(app, username="police-rect", roles=("case_operator",),
                                                 department_codes=("public_security",)))  # fmt: skip
    hr = admin_headers(client, make_operator(app, username="hr-rect", roles=("case_operator",),
                                             department_codes=("human_resources",)))  # fmt: skip
    everything = client.get("/admin/v1/rectifications", headers=officer).get_json()["items"]
    assert [t["department_code"] for t in everything] == ["human_resources"]
    task_id = everything[0]["id"]
    nothing = client.get("/admin/v1/rectifications", headers=police).get_json()
    assert nothing == {"items": [], "next_cursor": None}
    refused = client.post(f"/admin/v1/rectifications/{task_id}/response", json={"response": "已整改"},
                          headers=police)  # fmt: skip
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "evaluations.task_not_found"
    db.session.remove()
    assert db.session.get(RectificationTask, task_id).status == "open"  # untouched
    mine = client.get("/admin/v1/rectifications", headers=hr).get_json()["items"]
    assert [t["id"] for t in mine] == [task_id]
    respond = f"/admin/v1/rectifications/{task_id}/response"
    done = client.post(respond, json={"response": "已整改"}, headers=hr)
    assert done.status_code == 200 and done.get_json()["status"] == "responded"


def test_a_rating_that_fails_to_store_for_another_reason_is_not_called_already_rated(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    monkeypatch: Any,
) -> None:
    """Only the one-rating-per-case constraint means "already rated"; any other failure of the
    insert (here a NOT NULL the database reports) reaches the caller as the error it is."""
    from sqlalchemy.exc import IntegrityError

    app_id = _completed(client, zhang)
    session = db.session()
    flush = session.flush

    def failing(*args: Any, **kwargs: Any) -> None:
        if any(isinstance(obj, Evaluation) for obj in session.new):
            cause = Exception("NOT NULL constraint failed: evaluations.level")
            raise IntegrityError("INSERT INTO evaluations", {}, cause)
        flush(*args, **kwargs)

    monkeypatch.setattr(session, "flush", failing)
    with pytest.raises(IntegrityError):
        evaluations.rate(
            session, app.extensions["yiwang"].encryptor, account_id=zhang["account_id"],
            application_id=app_id, level="满意",
        )  # fmt: skip


def test_a_department_with_the_longest_name_the_catalog_takes_is_rated_and_counted(
    client: Any,
    zhang: dict,  # noqa: F811
    officer: dict,
) -> None:
    """The catalog takes department names of up to 100 characters; a rating of such a
    department's case is kept, and its figures read the same to the public and to officers."""
    from domain.applications import forms

    session = db.session()
    for department in session.scalars(select(Department)):
        department.name = (department.code + "行政审批服务局政务服务中心" * 8)[:100]
    session.commit()
    forms._cache.clear()  # specs name the departments they were built with
    app_id = _completed(client, zhang)
    made = rate(client, zhang, app_id, level="不满意", reason="等了很久")
    assert made.status_code == 201, made.get_json()
    name = db.session.get(Evaluation, made.get_json()["id"]).department
    assert len(name) == 100
    public = client.get(f"/v1/departments/{name}/ratings").get_json()
    assert public["total"] == 1 and public["bad"] == 1 and public["bad_rectified"] == 0
    figures = client.get("/admin/v1/rectifications/departments", query_string={"department": name},
                         headers=officer)  # fmt: skip
    assert figures.status_code == 200 and figures.get_json() == public
    tasks = client.get("/admin/v1/rectifications", headers=officer).get_json()["items"]
    assert [t["department"] for t in tasks] == [name]


def test_officers_read_figures_only_of_a_department_that_exists(
    client: Any,
    seeded: None,  # noqa: F811
    officer: dict,
) -> None:
    unknown = client.get(
        "/admin/v1/rectifications/departments", query_string={"department": "没有这个部门"}, headers=officer
    )
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "catalog.department_not_found"
    missing = client.get("/admin/v1/rectifications/departments", headers=officer)
    assert missing.status_code == 422 and "department" in missing.get_json()["error"]["fields"]
    name = db.session().scalars(select(Department.name)).first()
    zero = client.get(
        "/admin/v1/rectifications/departments", query_string={"department": name}, headers=officer
    )
    assert zero.status_code == 200 and zero.get_json()["total"] == 0


def test_escalation_takes_a_bounded_batch_a_pass_and_the_rest_next_pass(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    monkeypatch: Any,
) -> None:
    from datetime import date

    from domain.applications.deadlines import local_date

    monkeypatch.setattr(rectification_sweep, "ESCALATE_BATCH", 1)
    dues = []
    for _ in range(2):
        app_id = _completed(client, zhang)
        dues.append(
            rate(client, zhang, app_id, level="不满意", reason="等了很久").get_json()["rectification"][
                "due_on"
            ]
        )
    while local_date(clock.now()) <= max(date.fromisoformat(d) for d in dues):
        clock.advance(days=1)
    assert rectification_sweep.escalate_overdue(db.session(), clock.now()) == 1
    db.session.commit()
    assert rectification_sweep.escalate_overdue(db.session(), clock.now()) == 1
    db.session.commit()
    assert rectification_sweep.escalate_overdue(db.session(), clock.now()) == 0
