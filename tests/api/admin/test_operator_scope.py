"""Admins tie operators to halls and departments: checked, shown, audited, live at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from api.idempotency import HEADER
from core.audit import AuditEvent
from domain.operators.models import Operator
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.appointments.conftest import make_hall
from tests.domain.operators.factories import admin_headers, make_operator

URL = "/admin/v1/operators"
NEW = {"username": "desk-1", "display_name": "窗口一", "password": "a long enough passphrase"}


def test_an_operator_is_created_tied_to_halls_and_departments(app, client, db_session, seeded):  # noqa: F811
    hall = make_hall(app)
    admin = admin_headers(client, make_operator(app))
    body = NEW | {"roles": ["hall_officer", "case_operator"], "hall_ids": [hall, hall],
                  "department_codes": ["public_security"]}  # fmt: skip
    made = client.post(URL, json=body, headers=admin | {HEADER: "create-desk-1"})
    assert made.status_code == 201, made.get_json()
    operator = made.get_json()["operator"]
    assert operator["hall_ids"] == [hall] and operator["department_codes"] == ["public_security"]
    assert operator["scoped"] is True
    listed = {o["username"]: o for o in client.get(URL, headers=admin).get_json()}
    assert listed["desk-1"]["hall_ids"] == [hall]
    assert listed["alice"]["scoped"] is False and listed["alice"]["hall_ids"] == []
    audited = select(AuditEvent).where(
        AuditEvent.action == "operator.create", AuditEvent.target_id == operator["id"]
    )
    created = db_session.scalars(audited).one()
    assert created.details["hall_ids"] == [hall]
    assert created.details["department_codes"] == ["public_security"]


def test_unknown_halls_and_departments_are_refused_and_nothing_is_written(
    app,
    client,
    db_session,
    seeded,  # noqa: F811
):
    hall = make_hall(app)
    admin = admin_headers(client, make_operator(app))
    body = NEW | {"roles": ["hall_officer"], "hall_ids": [hall, "no-such-hall"], "department_codes": ["mars"]}
    refused = client.post(URL, json=body, headers=admin | {HEADER: "create-desk-bad"})
    assert refused.status_code == 422, refused.get_json()
    error = refused.get_json()["error"]
    assert error["code"] == "admin.scope_unknown" and "不存在" in error["message"]
    assert set(error["fields"]) == {"hall_ids.1", "department_codes.0"}
    en = client.post(URL, json=body, headers=admin | {HEADER: "create-desk-bad-en", "Accept-Language": "en"})
    assert "does not exist" in en.get_json()["error"]["message"]
    assert en.get_json()["error"]["fields"]["hall_ids.1"] == ["No such hall"]
    db_session.rollback()
    assert db_session.scalar(select(Operator).where(Operator.username == "desk-1")) is None
    # The same on a change: nothing changes, not even the valid part.
    desk = make_operator(app, username="desk-2", roles=("case_operator",), department_codes=("health",))
    patch = {"department_codes": ["taxation", "mars"], "roles": ["hall_officer"]}
    changed = client.patch(f"{URL}/{desk['id']}", json=patch, headers=admin | {HEADER: "patch-desk-bad"})
    assert changed.status_code == 422 and set(changed.get_json()["error"]["fields"]) == {"department_codes.1"}
    db_session.rollback()
    stored = db_session.get(Operator, desk["id"])
    assert (stored.department_codes, stored.roles) == (["health"], ["case_operator"])


def test_a_scope_change_is_audited_and_an_empty_list_lifts_it(app, client, db_session, seeded):  # noqa: F811
    first, second = make_hall(app), make_hall(app)
    admin = admin_headers(client, make_operator(app))
    desk = make_operator(app, username="desk-3", roles=("hall_officer",), hall_ids=(first,))
    url = f"{URL}/{desk['id']}"
    moved = client.patch(url, json={"hall_ids": [second, first]}, headers=admin | {HEADER: "move-desk-3"})
    assert moved.status_code == 200 and moved.get_json()["hall_ids"] == [second, first]
    audited = select(AuditEvent).where(
        AuditEvent.action == "operator.update", AuditEvent.target_id == desk["id"]
    )
    audit = db_session.scalars(audited).one()
    assert audit.details == {"hall_ids": {"from": [first], "to": [second, first]}}
    lifted = client.patch(url, json={"hall_ids": []}, headers=admin | {HEADER: "lift-desk-3"})
    assert lifted.get_json()["hall_ids"] == [] and lifted.get_json()["scoped"] is False
    # Admins are never restricted, whatever is assigned to them.
    boss = client.patch(url, json={"roles": ["admin"], "department_codes": ["health"]},
                        headers=admin | {HEADER: "boss-desk-3"})  # fmt: skip
    assert boss.get_json()["department_codes"] == ["health"] and boss.get_json()["scoped"] is False


def test_the_api_documents_the_scope(client: Any) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    create = next(v for k, v in schemas.items() if k.startswith("OperatorCreate"))
    assert "admin.scope_unknown" in create["properties"]["hall_ids"]["description"]
    assert {"hall_ids", "department_codes", "scoped"} <= set(schemas["Operator"]["properties"])


def test_operators_tied_to_departments_move_only_their_departments_cases(app, client, zhang):  # noqa: F811
    """A public-security desk must not accept, complete or reject a human-resources case (the
    social-security card): 404, as if it did not exist, and the case does not move."""
    from core.db import db
    from domain.applications.models import Application
    from tests.forwarding.conftest import submitted

    case = submitted(client, zhang)  # 社会保障卡申领: human_resources
    police = admin_headers(
        client,
        make_operator(
            app, username="police-desk", roles=("case_operator",), department_codes=("public_security",)
        ),
    )
    social = admin_headers(
        client,
        make_operator(
            app, username="hr-desk", roles=("case_operator",), department_codes=("human_resources",)
        ),
    )
    url = f"/admin/v1/applications/{case['id']}/stages"
    refused = client.post(url, json={"to": "received"}, headers=police | {HEADER: "stage-1"})
    assert refused.status_code == 404, refused.get_json()
    assert case["case_number"] not in refused.get_data(as_text=True)
    db.session.remove()
    assert db.session.get(Application, case["id"]).status == "submitted"
    moved = client.post(url, json={"to": "received"}, headers=social | {HEADER: "stage-2"})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["status"] == "received"
