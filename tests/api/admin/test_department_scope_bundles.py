"""A bundle (一件事) is every one of its departments' case: each department's operators see and
act on its complaints and rectification tasks, and read its burden figures, not only the
department of its first item; a department with no item in it still sees nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from core.db import db
from domain.applications.models import Application
from domain.complaints.models import Complaint
from domain.evaluations.models import RectificationTask
from tests.api.v1.applications.conftest import NEWBORN, SS_CARD, create, seeded, zhang  # noqa: F401
from tests.domain.operators.factories import admin_headers, make_operator

# 新生儿出生一件事: health (first item), public_security, medical_insurance, human_resources.
FIRST, OTHER, OUTSIDE = "health", "public_security", "civil_affairs"


def _desk(app: Any, client: Any, name: str, *departments: str) -> dict:
    operator = make_operator(app, username=name, roles=("case_operator",), department_codes=departments)
    return admin_headers(client, operator)


def _bundle(client: Any, who: dict) -> str:
    made = create(client, who, bundle_id=NEWBORN)
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]


def test_every_department_of_a_bundle_sees_and_answers_its_complaints(app, client, zhang):  # noqa: F811
    case = _bundle(client, zhang)
    body = {"kind": "complaint", "category": "efficiency", "text": "出生登记等了很久", "application_id": case}
    filed = client.post("/v1/complaints", json=body, headers=zhang["headers"])
    assert filed.status_code == 201, filed.get_json()
    complaint = filed.get_json()["id"]
    first, other = _desk(app, client, "health-desk", FIRST), _desk(app, client, "police-desk", OTHER)
    outside = _desk(app, client, "civil-desk", OUTSIDE)

    def queue(who: dict) -> list[dict]:
        return client.get("/admin/v1/complaints", headers=who).get_json()["items"]

    assert [c["id"] for c in queue(first)] == [complaint]
    assert [(c["id"], c["department_code"]) for c in queue(other)] == [(complaint, FIRST)]
    assert queue(outside) == []
    refused = client.get(f"/admin/v1/complaints/{complaint}", headers=outside)
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "complaints.not_found"
    en = client.post(f"/admin/v1/complaints/{complaint}/reply", json={"text": "已处理"},
                     headers=outside | {"Accept-Language": "en"})  # fmt: skip
    assert (
        en.status_code == 404 and en.get_json()["error"]["message"] == "Complaint or consultation not found"
    )
    db.session.remove()
    assert db.session.get(Complaint, complaint).status == "submitted"
    read = client.get(f"/admin/v1/complaints/{complaint}", headers=other)
    assert read.status_code == 200 and read.get_json()["text"] == "出生登记等了很久"
    answered = client.post(
        f"/admin/v1/complaints/{complaint}/reply", json={"text": "已为您加急"}, headers=other
    )
    assert answered.status_code == 200 and answered.get_json()["status"] == "replied"


def test_every_department_of_a_bundle_sees_and_answers_its_rectification(app, client, zhang):  # noqa: F811
    case = _bundle(client, zhang)
    session = db.session()
    session.get(Application, case).status = "completed"
    session.commit()
    rated = client.post(f"/v1/applications/{case}/evaluation", json={"level": "不满意", "reason": "跑了两次"},
                        headers=zhang["headers"])  # fmt: skip
    assert rated.status_code == 201, rated.get_json()
    other, outside = _desk(app, client, "police-rect", OTHER), _desk(app, client, "civil-rect", OUTSIDE)
    assert client.get("/admin/v1/rectifications", headers=outside).get_json() == {
        "items": [],
        "next_cursor": None,
    }
    listed = client.get("/admin/v1/rectifications?status=open", headers=other).get_json()["items"]
    assert [t["department_code"] for t in listed] == [FIRST]
    task = listed[0]["id"]
    refused = client.post(
        f"/admin/v1/rectifications/{task}/response", json={"response": "已整改"}, headers=outside
    )
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "evaluations.task_not_found"
    db.session.remove()
    assert db.session.get(RectificationTask, task).status == "open"
    done = client.post(
        f"/admin/v1/rectifications/{task}/response", json={"response": "已整改"}, headers=other
    )
    assert done.status_code == 200 and done.get_json()["status"] == "responded"


def test_the_burden_report_counts_only_the_operators_departments_applications(app, client, zhang):  # noqa: F811
    bundle = _bundle(client, zhang)
    item = create(client, zhang, service_code=SS_CARD).get_json()["id"]  # human_resources alone
    session = db.session()
    for app_id, prefilled in ((bundle, 7), (item, 3)):
        row = session.get(Application, app_id)
        row.status, row.submission_version, row.fields_prefilled, row.fields_typed = (
            "submitted",
            1,
            prefilled,
            1,
        )
    session.commit()
    everyone = _desk(app, client, "hotline")
    police = _desk(app, client, "police-burden", OTHER)
    social = _desk(app, client, "hr-burden", "human_resources")
    outside = _desk(app, client, "civil-burden", OUTSIDE)

    def rows(who: dict, query: str = "") -> list[tuple]:
        got = client.get(f"/admin/v1/applications/burden{query}", headers=who)
        assert got.status_code == 200, got.get_json()
        return sorted((r["kind"], r["applications"], r["fields_prefilled"]) for r in got.get_json()["items"])

    assert rows(everyone) == [("bundle", 1, 7), ("item", 1, 3)]
    assert rows(social) == [("bundle", 1, 7), ("item", 1, 3)]
    assert rows(police) == [("bundle", 1, 7)]  # its item in the bundle, not the social-security card
    assert rows(police, f"?service_code={SS_CARD}") == []
    assert rows(outside) == []


@pytest.mark.parametrize(
    "items",
    ["null", "{}", '[{"code": "x", "version": "1.5"}]', '[{"code": "x"}]'],
    ids=["null", "object", "version-not-a-number", "no-version"],
)
def test_one_case_with_unreadable_pins_does_not_break_a_departments_lists(app, client, zhang, items):  # noqa: F811
    """A row whose pinned items cannot be read (legacy or hand-edited data) matches no
    department; every other case still lists, and the odd one is 404, never a 400 or 500."""
    case = _bundle(client, zhang)
    odd = create(client, zhang, service_code=SS_CARD).get_json()["id"]
    filed = []
    for application_id in (case, odd):
        body = {
            "kind": "complaint",
            "category": "efficiency",
            "text": "等了很久",
            "application_id": application_id,
        }
        made = client.post("/v1/complaints", json=body, headers=zhang["headers"])
        assert made.status_code == 201, made.get_json()
        filed.append(made.get_json()["id"])
    db.session.execute(
        text("UPDATE applications SET items = :items WHERE id = :id"), {"items": items, "id": odd}
    )
    db.session.commit()
    other = _desk(app, client, "police-desk", OTHER)
    queue = client.get("/admin/v1/complaints", headers=other)
    assert queue.status_code == 200, queue.get_json()
    assert [c["id"] for c in queue.get_json()["items"]] == [filed[0]]
    assert client.get("/admin/v1/applications/burden", headers=other).status_code == 200
    assert client.get(f"/admin/v1/complaints/{filed[1]}", headers=other).status_code == 404
    refused = client.post(f"/admin/v1/complaints/{filed[1]}/reply", json={"text": "已处理"}, headers=other)
    assert refused.status_code == 404
