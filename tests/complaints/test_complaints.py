"""Complaints and consultations: tracking number, timeline, operator reply, notification, rating."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.api.v1.applications.conftest import li, seeded, zhang  # noqa: F401 - fixtures
from tests.domain.operators.factories import admin_headers, make_operator
from tests.forwarding.conftest import submitted

URL = "/v1/complaints"


@pytest.fixture
def operator(app: Any, client: Any) -> dict:
    return admin_headers(client, make_operator(app, username="hotline-12345", roles=("case_operator",)))


def file(client: Any, who: dict, **body: Any) -> Any:
    base = {
        "kind": "complaint",
        "category": "efficiency",
        "text": "窗口说材料不齐，让我跑了三次，我的电话 13912345678",
    }
    return client.post(URL, json=base | body, headers=who["headers"])


def test_a_complaint_is_answered_notified_and_rated(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    operator: dict,
) -> None:
    case = submitted(client, zhang)
    made = file(client, zhang, application_id=case["id"])
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["tracking_no"].startswith("TS") and body["status_label"] == "已受理"
    assert [e["kind"] for e in body["timeline"]] == ["submitted"]
    # Operators see the queue without texts; opening one is audited.
    queue = client.get("/admin/v1/complaints", headers=operator).get_json()["items"]
    assert [q["tracking_no"] for q in queue] == [body["tracking_no"]] and "text" not in queue[0]
    detail = client.get(f"/admin/v1/complaints/{body['id']}", headers=operator).get_json()
    assert "跑了三次" in detail["text"]
    from core.audit import AuditEvent

    assert db.session.query(AuditEvent).filter_by(action="complaint.read", target_id=body["id"]).count() == 1
    reply = {"text": "已核实，已为您开通绿色通道"}
    answer = client.post(f"/admin/v1/complaints/{body['id']}/reply", json=reply, headers=operator)
    assert answer.status_code == 200 and answer.get_json()["status"] == "replied"
    inbox = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
    assert inbox[0]["event_type"] == "complaint_replied" and body["tracking_no"] in inbox[0]["body"]
    unhappy = client.post(f"{URL}/{body['id']}/rating", json={"rating": "不满意"}, headers=zhang["headers"])
    assert unhappy.get_json()["status"] == "submitted"  # back in the queue for another answer
    client.post(f"/admin/v1/complaints/{body['id']}/reply", json={"text": "已加急办结"}, headers=operator)
    inbox = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
    told = [n for n in inbox if n["event_type"] == "complaint_replied"]
    assert len(told) == 2  # the second answer is a notice of its own, not a repeat of the first
    happy = client.post(
        f"{URL}/{body['id']}/rating", json={"rating": "满意"}, headers=zhang["headers"]
    ).get_json()
    assert happy["status"] == "closed"
    assert [e["kind"] for e in happy["timeline"]] == [
        "submitted",
        "replied",
        "rated",
        "replied",
        "rated",
        "closed",
    ]
    assert happy["timeline"][1]["text"] == "已核实，已为您开通绿色通道"


def test_bad_input_and_other_peoples_cases(client: Any, zhang: dict, li: dict) -> None:  # noqa: F811
    theirs = submitted(client, li)
    resp = file(client, zhang, kind="praise", category="weather", text="", application_id=theirs["id"],
                attachments=["no-such-file"])  # fmt: skip
    assert resp.status_code == 422
    assert set(resp.get_json()["error"]["fields"]) == {
        "kind",
        "category",
        "text",
        "application_id",
        "attachments.0",
    }
    assert client.get(URL, headers=zhang["headers"]).get_json() == []  # nothing was written
    mine = file(client, zhang, kind="consultation", category="policy", text="社保卡能异地补办吗？").get_json()
    assert mine["tracking_no"].startswith("ZX")
    assert client.get(f"{URL}/{mine['id']}", headers=li["headers"]).status_code == 404
    early = client.post(f"{URL}/{mine['id']}/rating", json={"rating": "满意"}, headers=zhang["headers"])
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "complaints.state"


INVISIBLE = "\u200b\ufeff\u2060\u200d"  # zero-width space, BOM, word joiner, zero-width joiner


def test_text_of_invisible_characters_only_is_empty(client: Any, zhang: dict, operator: dict) -> None:  # noqa: F811
    blank = file(client, zhang, text=INVISIBLE + " \u3000")
    assert blank.status_code == 422 and set(blank.get_json()["error"]["fields"]) == {"text"}, blank.get_json()
    assert client.get(URL, headers=zhang["headers"]).get_json() == []  # no tracking number for nothing
    made = file(client, zhang, text=INVISIBLE + "窗口排队太久")
    assert made.status_code == 201, made.get_json()
    answer = client.post(f"/admin/v1/complaints/{made.get_json()['id']}/reply", json={"text": INVISIBLE},
                         headers=operator)  # fmt: skip
    assert answer.status_code == 422 and set(answer.get_json()["error"]["fields"]) == {"text"}


def test_the_text_is_encrypted_at_rest(client: Any, zhang: dict) -> None:  # noqa: F811
    from sqlalchemy import text

    file(client, zhang, text="我的身份证号 110101199003078515 被泄露")
    raw = db.session.execute(text("SELECT text_enc FROM complaints")).scalar()
    assert "110101199003078515" not in raw and raw.startswith("v1.")


def test_a_question_about_a_draft_outlives_the_draft(app: Any, client: Any, zhang: dict, clock: Any) -> None:  # noqa: F811
    from domain.applications import drafts as applications
    from tests.api.v1.applications.conftest import SS_CARD, create, relogin

    drafts = [create(client, zhang, service_code=SS_CARD).get_json() for _ in range(2)]
    asked = [
        file(
            client,
            zhang,
            kind="consultation",
            category="policy",
            text="这一栏怎么填？",
            application_id=d["id"],
        )
        for d in drafts
    ]
    assert [a.status_code for a in asked] == [201, 201]
    deleted = client.delete(f"/v1/applications/{drafts[0]['id']}", headers=zhang["headers"])
    assert deleted.status_code == 204
    clock.advance(days=400)  # the other draft expires; the housekeeping purge must still run
    assert applications.purge_expired_drafts(db.session) == 1
    later = relogin(app, zhang)
    for a in asked:
        kept = client.get(f"{URL}/{a.get_json()['id']}", headers=later["headers"])
        assert kept.status_code == 200 and kept.get_json()["application_id"] is None


def test_a_complaints_evidence_outlives_the_draft_it_was_uploaded_for(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    clock: Any,
    services: Any,
) -> None:
    from domain.applications import materials
    from domain.applications.models import ApplicationFile
    from tests.api.v1.applications.conftest import SS_CARD, create, jpeg, upload

    draft = create(client, zhang, service_code=SS_CARD).get_json()
    evidence = upload(client, zhang, draft["id"], "id_card", jpeg()).get_json()["id"]
    other = upload(client, zhang, draft["id"], "insurance", jpeg(color="blue")).get_json()["id"]
    made = file(client, zhang, text="窗口拒收这张身份证照片", attachments=[evidence])
    assert made.status_code == 201, made.get_json()
    assert client.delete(f"/v1/applications/{draft['id']}", headers=zhang["headers"]).status_code == 204
    deps = services.applications
    keys = {f: db.session.get(ApplicationFile, f).storage_key for f in (evidence, other)}
    clock.advance(seconds=deps.orphan_grace_seconds + 1)
    swept = materials.sweep_orphans(db.session(), deps)
    assert swept["files"] == 1  # the file nothing holds any more
    assert db.session.get(ApplicationFile, other) is None and not deps.storage.exists(keys[other])
    assert db.session.get(ApplicationFile, evidence) is not None and deps.storage.exists(keys[evidence])
    _, stored = materials.read_file(db.session(), deps, account_id=zhang["account_id"], file_id=evidence)
    assert stored[:3] == b"\xff\xd8\xff"
    # The handler opens it (audited); a file the complaint does not hold is not opened.
    from core.audit import AuditEvent

    url = f"/admin/v1/complaints/{made.get_json()['id']}/attachments"
    operator = admin_headers(client, make_operator(app, username="evidence-desk", roles=("case_operator",)))
    opened = client.get(f"{url}/{evidence}", headers=operator)
    assert opened.status_code == 200 and opened.mimetype == "image/jpeg" and opened.data == stored
    assert opened.headers["Cache-Control"] == "no-store"
    reads = db.session.query(AuditEvent).filter_by(action="complaint.attachment_read").all()
    assert [(r.target_id, r.details["file_id"]) for r in reads] == [(made.get_json()["id"], evidence)]
    not_a_complaint = f"/admin/v1/complaints/{draft['id']}/attachments/{evidence}"
    for path, code in ((f"{url}/{other}", "complaints.attachment_not_found"),
                       (not_a_complaint, "complaints.not_found")):  # fmt: skip
        refused = client.get(path, headers=operator)
        assert refused.status_code == 404 and refused.get_json()["error"]["code"] == code
    police = admin_headers(client, make_operator(app, username="police-ev", roles=("case_operator",),
                                                 department_codes=("public_security",)))  # fmt: skip
    assert client.get(f"{url}/{evidence}", headers=police).status_code == 404  # not their complaint
    assert client.get(f"{url}/{evidence}", headers=zhang["headers"]).status_code == 401  # not an operator


def test_operators_tied_to_departments_see_and_answer_only_their_departments_complaints(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    operator: dict,
) -> None:
    from core.audit import AuditEvent
    from domain.complaints.models import Complaint

    case = submitted(client, zhang)  # 社会保障卡申领: human_resources
    about_case = file(client, zhang, application_id=case["id"]).get_json()
    general = file(client, zhang, kind="consultation", category="policy", text="请问医保怎么转移").get_json()
    police = admin_headers(client, make_operator(app, username="police-desk", roles=("case_operator",),
                                                 department_codes=("public_security",)))  # fmt: skip
    hr = admin_headers(client, make_operator(app, username="hr-desk", roles=("case_operator",),
                                             department_codes=("human_resources", "health")))  # fmt: skip
    queue = lambda who: [c["id"] for c in client.get("/admin/v1/complaints", headers=who).get_json()["items"]]  # noqa: E731
    assert queue(police) == []
    assert queue(hr) == [about_case["id"]]  # not the consultation without a case
    assert sorted(queue(operator)) == sorted([about_case["id"], general["id"]])  # not tied: everything
    listed = client.get("/admin/v1/complaints", headers=hr).get_json()["items"][0]
    assert listed["department_code"] == "human_resources"
    # Another department's complaint does not exist for them: not read, not answered, not audited.
    for target in (about_case["id"], general["id"]):
        read = client.get(f"/admin/v1/complaints/{target}", headers=police)
        assert read.status_code == 404 and read.get_json()["error"]["code"] == "complaints.not_found"
        answer = client.post(f"/admin/v1/complaints/{target}/reply", json={"text": "已处理"}, headers=police)
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "complaints.not_found"
    assert client.get(f"/admin/v1/complaints/{general['id']}", headers=hr).status_code == 404
    db.session.remove()
    assert db.session.query(AuditEvent).filter_by(action="complaint.read").count() == 0
    assert {c.status for c in db.session.query(Complaint)} == {"submitted"}
    assert client.get(f"/admin/v1/complaints/{about_case['id']}", headers=hr).status_code == 200
    done = client.post(f"/admin/v1/complaints/{about_case['id']}/reply", json={"text": "已核实"}, headers=hr)
    assert done.status_code == 200 and done.get_json()["status"] == "replied"
