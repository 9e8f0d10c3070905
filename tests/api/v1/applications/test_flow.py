"""A citizen walks through seeded items and a bundle: create, prefill, upload, submit,
supplement, resubmit, and the handling side's stages up to the result."""

from __future__ import annotations

from sqlalchemy import func, select

from core.audit import AuditEvent
from domain.applications.models import ForwardingOutbox
from tests.api.v1.applications.conftest import (
    DIVORCE,
    NEWBORN,
    PASSPORT,
    SS_CARD,
    create,
    error_code,
    get,
    jpeg,
    key,
    patch,
    pdf,
    relogin,
    stage,
    submit,
    upload,
)
from tests.api.v1.identity.conftest import refreshed
from tests.conftest import make_citizen


def _fill_ss_card(client, who, app):
    resp = patch(
        client, who, app, {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    )
    assert resp.status_code == 200, resp.get_json()
    app = resp.get_json()
    for material in ("id_card", "insurance"):
        assert upload(client, who, app["id"], material, jpeg()).status_code == 201
    return get(client, who, app["id"]).get_json()


def test_social_security_card_from_draft_to_result(client, zhang, officer, db_session):
    resp = create(client, zhang, service_code=SS_CARD)
    assert resp.status_code == 201, resp.get_json()
    app = resp.get_json()
    assert resp.headers["ETag"] == '"r1"' and app["status"] == "draft" and app["status_label"] == "草稿"
    # Prefilled from the verified identity (masked, read-only) and the account phone (editable).
    assert (
        app["data"]["applicant"]["name"] == zhang["name"][0] + "*" * (len(zhang["name"]) - 1)
        or "*" in app["data"]["applicant"]["name"]
    )
    assert zhang["id_number"] not in str(app["data"])
    prov = app["provenance"]
    assert prov["applicant.name"]["source"] == "identity.name" and prov["applicant.name"]["read_only"] is True
    assert prov["applicant.id_number"]["verified"] is True and prov["applicant.id_number"]["record_id"]
    assert (
        prov["applicant.phone"]["source"] == "account.phone" and prov["applicant.phone"]["read_only"] is False
    )
    assert {m["id"]: m["satisfied"] for m in app["materials"]} == {
        "id_card": False,
        "insurance": False,
        "photo": False,
    }

    app = _fill_ss_card(client, zhang, app)
    assert {m["id"]: m["satisfied"] for m in app["materials"]}["id_card"] is True
    done = submit(client, zhang, app)
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["status"] == "submitted" and body["submission_version"] == 1
    assert body["case_number"].startswith(SS_CARD) and len(body["case_number"]) == 31 + 8 + 4
    outbox = db_session.scalars(
        select(ForwardingOutbox).where(ForwardingOutbox.application_id == app["id"])
    ).all()
    assert [(o.kind, o.submission_version, o.case_number) for o in outbox] == [
        ("submit", 1, body["case_number"])
    ]

    # The province asks for a corrected bank choice and a clearer ID card photo.
    assert stage(client, officer, app["id"], "received").status_code == 200
    asked = stage(
        client, officer, app["id"], "supplement_requested", note="身份证照片不清晰，请重新上传",
        fields=["ss_card_application.bank"], materials=["id_card"],
    )  # fmt: skip
    assert asked.status_code == 200, asked.get_json()
    app = get(client, zhang, app["id"]).get_json()
    assert app["status"] == "supplement_requested"
    assert app["editable_fields"] == ["ss_card_application.bank", "ss_card_application.outlet"]  # + the blank
    # Only the named field may change.
    locked = patch(client, zhang, app, {"delivery": {"method": "post", "address": "广州市天河区体育西路1号"}})
    assert locked.status_code == 422 and locked.get_json()["error"]["code"] == "application.field_locked"
    fixed = patch(client, zhang, app, {"ss_card_application": {"bank": "ccb"}})
    assert fixed.status_code == 200
    assert upload(client, zhang, app["id"], "insurance", jpeg()).status_code == 409  # not named
    assert upload(client, zhang, app["id"], "id_card", jpeg(color="blue")).status_code == 201
    again = submit(client, zhang, fixed.get_json(), consent=False)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "resubmitted" and again.get_json()["submission_version"] == 2
    assert again.get_json()["case_number"] == body["case_number"]
    kinds = db_session.scalars(
        select(ForwardingOutbox.kind)
        .where(ForwardingOutbox.application_id == app["id"])
        .order_by(ForwardingOutbox.submission_version)
    ).all()
    assert kinds == ["submit", "resubmit"]

    accepted = stage(client, officer | {"Accept-Language": "en"}, app["id"], "accepted")
    assert accepted.status_code == 200 and accepted.get_json()["status_label"] == "Accepted"
    for to, extra in (
        ("in_review", {}),
        ("completed", {"result": "approved"}),
        ("result_delivered", {}),
    ):
        resp = stage(client, officer, app["id"], to, **extra)
        assert resp.status_code == 200, (to, resp.get_json())
    final = get(client, zhang, app["id"]).get_json()
    assert final["status"] == "result_delivered" and final["result"] == "approved"
    assert final["expected_completion"] is not None and final["overdue"] is False
    timeline = client.get(f"/v1/applications/{app['id']}/timeline", headers=zhang["headers"]).get_json()[
        "events"
    ]
    assert [e["status"] for e in timeline] == [
        "draft", "submitted", "received", "supplement_requested", "resubmitted",
        "accepted", "in_review", "completed", "result_delivered",
    ]  # fmt: skip
    supplement = timeline[3]
    assert supplement["note"] == "身份证照片不清晰，请重新上传" and supplement["details"]["materials"] == [
        "id_card"
    ]
    assert supplement["actor"] == "operator"
    # Reading the full identity for prefill was audited.
    assert db_session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "pii.read", AuditEvent.target_id == app["id"])
    )


def test_a_supplement_that_changes_delivery_to_post_lets_the_citizen_add_the_address(client, zhang, officer):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    app = patch(
        client, zhang, app, {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    )
    app = app.get_json()
    for material in ("id_card", "insurance"):
        assert upload(client, zhang, app["id"], material, jpeg()).status_code == 201
    assert submit(client, zhang, get(client, zhang, app["id"]).get_json()).status_code == 200
    assert stage(client, officer, app["id"], "received").status_code == 200
    asked = stage(
        client,
        officer,
        app["id"],
        "supplement_requested",
        note="窗口暂停领卡，请改为邮寄",
        fields=["delivery.method"],
    )
    assert asked.status_code == 200, asked.get_json()
    app = get(client, zhang, app["id"]).get_json()
    # The blank address beside the named field may be filled; the blank outlet elsewhere may not.
    assert app["editable_fields"] == ["delivery.method", "delivery.address"]
    assert error_code(patch(client, zhang, app, {"ss_card_application": {"outlet": "天河支行"}})) == (
        "application.field_locked"
    )
    by_post = patch(client, zhang, app, {"delivery": {"method": "post"}}).get_json()
    refused = submit(client, zhang, by_post, consent=False)
    assert refused.status_code == 422 and "data.delivery.address" in refused.get_json()["error"]["fields"]
    typo = patch(client, zhang, by_post, {"delivery": {"address": "广州市天河区体育西路"}}).get_json()
    fixed = patch(client, zhang, typo, {"delivery": {"address": "广州市天河区体育西路1号"}})
    assert fixed.status_code == 200, fixed.get_json()  # still editable once filled, until resubmission
    again = submit(client, zhang, fixed.get_json(), consent=False)
    assert again.status_code == 200 and again.get_json()["status"] == "resubmitted", again.get_json()


def test_passport_with_a_pdf_from_a_second_device(client, app, zhang):
    created = create(client, zhang, service_code=PASSPORT).get_json()
    # The same account on the mini-program resumes the draft where the app left it.
    mini = relogin(app, zhang, channel="miniprogram")
    resumed = client.get(f"/v1/applications/{created['id']}", headers=mini["headers"])
    assert resumed.status_code == 200 and resumed.get_json()["revision"] == created["revision"]
    form = client.get(f"/v1/applications/{created['id']}/form", headers=mini["headers"]).get_json()
    assert set(form) == {"schema", "ui", "prefill"}
    assert upload(client, mini, created["id"], "id_card", pdf(), "scan.pdf").status_code == 201
    first = submit(client, mini, get(client, mini, created["id"]).get_json())
    assert first.status_code == 422
    missing = first.get_json()["error"]["fields"]
    assert "materials.id_card" not in missing and all(p.startswith("data.") for p in missing)
    data = {
        "passport": {
            "application_type": "first",
            "purpose": "tourism",
            "occupation": "教师",
            "emergency_name": "王五",
            "emergency_phone": "13912345678",
            "appointment_date": "2026-12-20",
        },
        "household": {"address": "广州市天河区体育西路1号"},
        "delivery": {"method": "window"},
    }
    saved = patch(client, mini, resumed.get_json(), data)
    assert saved.status_code == 200, saved.get_json()
    done = submit(client, mini, saved.get_json())
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "submitted"


def test_divorce_needs_a_fresh_face_check(client, zhang, clock):
    created = create(client, zhang, service_code=DIVORCE).get_json()
    assert created["identity_requirement"] == {"min_level": "L3", "face_within_minutes": 30}
    clock.advance(31 * 60)
    zhang = refreshed(client, zhang)
    resp = submit(client, zhang, created)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert "identity" in error["fields"]
    assert error["details"]["identity"]["code"] == "identity.fresh_face_required"
    assert "consent" not in error["fields"]


def test_newborn_bundle_is_one_application_with_shared_materials(client, zhang):
    resp = create(client, zhang, bundle_id=NEWBORN)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["kind"] == "bundle" and body["bundle_code"] == NEWBORN and len(body["items"]) == 5
    ids = [m["id"] for m in body["materials"]]
    assert len(ids) == len(set(ids))  # a material several items need is asked once
    assert body["provenance"]["applicant.name"]["source"] == "identity.name"


def test_an_l1_citizen_learns_everything_missing_at_once(client, app, seeded):
    who = make_citizen(app)
    created = create(client, who, service_code=SS_CARD).get_json()
    assert "applicant.name" in created["prefill_missing"]
    resp = submit(client, who, created, consent=False)
    assert resp.status_code == 422
    fields = resp.get_json()["error"]["fields"]
    assert {
        "data.applicant.name",
        "data.ss_card_application",
        "materials.id_card",
        "identity",
        "consent",
    } <= set(fields) or {"data.applicant.name", "materials.id_card", "identity", "consent"} <= set(fields)
    assert fields["consent"] == ["请阅读并同意将申请信息提供给承办部门"]
    en = client.post(
        f"/v1/applications/{created['id']}/submit",
        json={},
        headers=who["headers"] | key() | {"Accept-Language": "en"},
    )
    assert en.get_json()["error"]["fields"]["consent"] == [
        "Agree to share this application with the handling department"
    ]
    assert en.get_json()["error"]["fields"]["materials.id_card"] == ["Add Resident identity card"]
