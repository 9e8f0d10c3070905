"""Lists for phones, due dates and pauses, reuse of earlier uploads and answers, expiry of
drafts, orphaned uploads, and the measured burden (case numbers: test_case_numbers.py)."""

from __future__ import annotations

import base64
import os
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import clock
from core.db import db
from domain.applications import drafts, materials, transitions
from domain.applications.models import Application, ApplicationFile, ApplicationMaterial
from domain.applications.timeline import add_event
from tests.api.v1.applications.conftest import (
    NEWBORN,
    PASSPORT,
    SS_CARD,
    URL,
    create,
    error_code,
    get,
    jpeg,
    key,
    patch,
    relogin,
    stage,
    submit,
    upload,
)
from tests.api.v1.identity.conftest import refreshed


def _submitted(client, who):
    app = create(client, who, service_code=SS_CARD).get_json()
    app = patch(
        client,
        who,
        app,
        {"ss_card_application": {"bank": "icbc", "outlet": "天河支行"}, "delivery": {"method": "window"}},
    ).get_json()
    for material in ("id_card", "insurance"):
        assert upload(client, who, app["id"], material, jpeg()).status_code == 201
    body = submit(client, who, get(client, who, app["id"]).get_json())
    assert body.status_code == 200, body.get_json()
    return body.get_json()


def test_list_filters_by_status_and_pages_with_a_cursor(client, zhang, clock):
    ids = []
    for _ in range(5):
        ids.append(create(client, zhang, service_code=SS_CARD).get_json()["id"])
        clock.advance(1)
    done = _submitted(client, zhang)
    first = client.get(URL, query_string={"limit": 4}, headers=zhang["headers"]).get_json()
    assert [i["id"] for i in first["items"]] == [done["id"], *ids[::-1][:3]]
    item = first["items"][0]
    assert set(item) >= {
        "service_name",
        "case_number",
        "status",
        "status_label",
        "updated_at",
        "expected_completion",
    }
    assert item["status_label"] == "已提交" and item["case_number"] == done["case_number"]
    second = client.get(
        URL, query_string={"limit": 4, "cursor": first["next_cursor"]}, headers=zhang["headers"]
    ).get_json()
    assert [i["id"] for i in second["items"]] == ids[::-1][3:] and second["next_cursor"] is None
    drafts = client.get(URL, query_string={"status": "draft"}, headers=zhang["headers"]).get_json()
    assert len(drafts["items"]) == 5
    en = client.get(
        URL, query_string={"status": "submitted"}, headers=zhang["headers"] | {"Accept-Language": "en"}
    )
    assert en.get_json()["items"][0]["status_label"] == "Submitted"
    assert en.get_json()["items"][0]["service_name"] == "Social security card application"
    detail = client.get(
        f"{URL}/{done['id']}", headers=zhang["headers"] | {"Accept-Language": "en"}
    ).get_json()
    assert (
        detail["service_name"] == "Social security card application" and detail["status_label"] == "Submitted"
    )
    assert get(client, zhang, done["id"]).get_json()["service_name"] == "社会保障卡申领"
    names = {m["id"]: m["name"] for m in detail["materials"]}
    assert names["id_card"] == "Resident identity card"
    assert {m["id"]: m["name"] for m in get(client, zhang, done["id"]).get_json()["materials"]}[
        "id_card"
    ] == ("居民身份证")
    forged = [
        b"not-a-cursor",
        b'["2026-12-01T08:00:00", "x"]',
        b'["2026-13-01T08:00:00+00:00", "x"]',
        b"[1, 2]",
        b'["2026-01-01T00:00:00+00:00", "\\u0000"]',
        b'["0001-01-01T00:00:00+14:00", "x"]',
    ]
    # Not base64 JSON; a time without its zone (cannot compare); no such date; no time; an id
    # the database refuses (NUL); a time before year 1 in UTC.
    for raw in forged:
        cursor = raw.decode() if raw == b"not-a-cursor" else base64.urlsafe_b64encode(raw).decode()
        bad = client.get(URL, query_string={"cursor": cursor}, headers=zhang["headers"])
        assert bad.status_code == 400 and error_code(bad) == "application.invalid_cursor", raw
    assert client.get(URL, query_string={"status": "lost"}, headers=zhang["headers"]).status_code == 422
    for both in ("draft,submitted", ["draft", "submitted"]):
        either = client.get(URL, query_string={"status": both}, headers=zhang["headers"]).get_json()
        assert sorted(i["status"] for i in either["items"]) == ["draft"] * 5 + ["submitted"], both
    lost = client.get(URL, query_string={"status": ["draft", "lost"]}, headers=zhang["headers"])
    assert lost.status_code == 422
    assert lost.get_json()["error"]["fields"] == {"status": ["未知的状态：lost"]}


def test_a_case_is_accepted_once_and_a_supplement_after_it_goes_back_to_review(
    app, client, zhang, officer, clock, db_session
):
    """受理 happens once: a supplement asked for during review, once answered and received by
    the province, goes back to review; the case cannot be accepted again or "not accepted"."""
    case = _submitted(client, zhang)
    for to in ("received", "accepted", "in_review"):
        assert stage(client, officer, case["id"], to).status_code == 200, to
    asked = stage(client, officer, case["id"], "supplement_requested", note="请补充开户网点",
                  fields=["ss_card_application.outlet"])  # fmt: skip
    assert asked.status_code == 200
    current = get(client, zhang, case["id"]).get_json()
    assert patch(client, zhang, current, {"ss_card_application": {"outlet": "体育西支行"}}).status_code == 200
    assert submit(client, zhang, get(client, zhang, case["id"]).get_json(), consent=False).status_code == 200
    for to in ("accepted", "not_accepted"):
        refused = stage(client, officer, case["id"], to)
        assert refused.status_code == 409 and error_code(refused) == "application.illegal_transition", to
    assert stage(client, officer, case["id"], "received").status_code == 200  # the province's receipt
    for to in ("accepted", "not_accepted"):
        assert stage(client, officer, case["id"], to).status_code == 409, to
    back = stage(client, officer, case["id"], "in_review")
    assert back.status_code == 200 and back.get_json()["status"] == "in_review"
    timeline = client.get(f"{URL}/{case['id']}/timeline", headers=zhang["headers"]).get_json()
    assert [e["status"] for e in timeline["events"]].count("accepted") == 1


def test_a_result_given_with_a_stage_that_has_none_is_refused_not_dropped(client, zhang, officer):
    """The officer meant to record the completion: 'received' with a result is a mistake to point out."""
    case = _submitted(client, zhang)
    wrong = stage(client, officer, case["id"], "received", result="approved")
    assert wrong.status_code == 422 and "result" in wrong.get_json()["error"]["fields"]
    assert get(client, zhang, case["id"]).get_json()["status"] == "submitted"  # nothing recorded


def test_before_acceptance_a_received_case_is_not_put_in_review_directly(client, zhang, officer):
    case = _submitted(client, zhang)
    assert stage(client, officer, case["id"], "received").status_code == 200
    refused = stage(client, officer, case["id"], "in_review")
    assert refused.status_code == 409 and error_code(refused) == "application.illegal_transition"


def test_due_date_pauses_during_a_supplement_and_shows_overdue(
    app, client, zhang, officer, clock, db_session
):
    case = _submitted(client, zhang)
    stage(client, officer, case["id"], "received")
    accepted = stage(client, officer, case["id"], "accepted").get_json()
    due = date.fromisoformat(accepted["expected_completion"])  # 10 working days
    assert (due - date.today()).days >= 10
    stage(client, officer, case["id"], "in_review")
    asked = stage(
        client,
        officer,
        case["id"],
        "supplement_requested",
        note="请补充开户网点",
        fields=["ss_card_application.outlet"],
    )
    assert asked.status_code == 200
    clock.advance(days=14)  # two weeks to answer: the clock stands still
    zhang = refreshed(client, zhang)
    current = get(client, zhang, case["id"]).get_json()
    assert current["clock_paused"] is True and current["overdue"] is False
    assert patch(client, zhang, current, {"ss_card_application": {"outlet": "体育西支行"}}).status_code == 200
    again = submit(client, zhang, get(client, zhang, case["id"]).get_json(), consent=False).get_json()
    # The citizen has answered: the clock runs again, whether or not the department moves.
    assert again["status"] == "resubmitted" and again["clock_paused"] is False
    # The officer's session has expired meanwhile; the handling side records the stage directly.
    transitions.advance(db_session, app_id=case["id"], to="in_review", actor_type="province", actor_id=None)
    moved = date.fromisoformat(get(client, zhang, case["id"]).get_json()["expected_completion"])
    assert moved > due and again["submission_version"] == 2
    clock.advance(days=40)
    zhang = relogin(app, zhang)
    late = get(client, zhang, case["id"]).get_json()
    assert late["overdue"] is True
    listed = client.get(URL, headers=zhang["headers"]).get_json()["items"][0]
    assert listed["overdue"] is True


def test_reuse_an_earlier_upload_and_earlier_answers(client, zhang):
    first = _submitted(client, zhang)
    second = create(client, zhang, service_code=SS_CARD).get_json()
    # What the citizen typed last time is offered again, as user-provided.
    assert second["data"]["ss_card_application"] == {"bank": "icbc", "outlet": "天河支行"}
    assert second["provenance"]["ss_card_application.bank"]["source"] == "application"
    assert second["provenance"]["ss_card_application.bank"]["record_id"] == first["id"]
    assert second["provenance"]["ss_card_application.bank"]["verified"] is False
    offered = client.get(f"{URL}/{second['id']}/materials/id_card/files", headers=zhang["headers"]).get_json()
    assert len(offered["reusable"]) == 1
    wrong = client.post(  # the ID-card photo cannot stand in for another material
        f"{URL}/{second['id']}/materials/insurance/reuse",
        json={"file_id": offered["reusable"][0]["id"]},
        headers=zhang["headers"],
    )
    assert wrong.status_code == 404
    reused = client.post(
        f"{URL}/{second['id']}/materials/id_card/reuse",
        json={"file_id": offered["reusable"][0]["id"]},
        headers=zhang["headers"],
    )
    assert reused.status_code == 200
    material = next(m for m in reused.get_json()["materials"] if m["id"] == "id_card")
    assert material["satisfied"] and material["satisfied_by"][0]["kind"] == "reuse"
    upload(client, zhang, second["id"], "insurance", jpeg())
    done = submit(client, zhang, get(client, zhang, second["id"]).get_json())
    assert done.status_code == 200


def test_expired_drafts_are_purged_and_orphaned_uploads_removed(
    client, app, zhang, clock, db_session, services
):
    deps = services.applications
    old = create(client, zhang, service_code=SS_CARD).get_json()
    upload(client, zhang, old["id"], "id_card", jpeg())
    kept = _submitted(client, zhang)
    # A request that died after storing the blob and before its row: nothing references the blob.
    deps.storage.put(f"materials/{zhang['account_id']}/interrupted", b"partial")
    # A worker killed in the middle of writing a blob: its hidden temporary file (local storage).
    folder = deps.storage.root / "materials" / zhang["account_id"]
    (folder / ".tmp-killed").write_bytes(b"half an encrypted photo")
    old_enough = (clock.now() - timedelta(days=1)).timestamp()
    os.utime(folder / ".tmp-killed", (old_enough, old_enough))
    clock.advance(days=deps.draft_ttl_days + 1)
    assert drafts.purge_expired_drafts(db_session) == 1
    swept = materials.sweep_orphans(db_session, deps)
    assert swept["files"] == 1 and swept["blobs"] >= 1 and swept["partial_writes"] == 1
    assert not deps.storage.exists(f"materials/{zhang['account_id']}/interrupted")
    assert not (folder / ".tmp-killed").exists()
    assert db_session.scalar(select(func.count()).select_from(Application)) == 1
    files = db_session.scalars(select(ApplicationFile)).all()
    assert len(files) == 2 and all(deps.storage.exists(f.storage_key) for f in files)  # the submitted case's
    assert (
        db_session.get(Application, old["id"]) is None and db_session.get(Application, kept["id"]) is not None
    )


def test_the_orphan_sweep_clears_a_backlog_in_batches_and_keeps_held_evidence(
    client, zhang, clock, db_session, services
):
    deps = services.applications
    first = create(client, zhang, service_code=SS_CARD).get_json()
    evidence = upload(client, zhang, first["id"], "id_card", jpeg()).get_json()["id"]  # the oldest file
    complained = client.post(
        "/v1/complaints",
        json={"kind": "complaint", "category": "materials", "text": "照片被拒收", "attachments": [evidence]},
        headers=zhang["headers"],
    )
    assert complained.status_code == 201, complained.get_json()
    drafts = [first["id"]]
    for color in ("blue", "green"):
        clock.advance(seconds=1)
        draft = create(client, zhang, service_code=SS_CARD).get_json()
        upload(client, zhang, draft["id"], "id_card", jpeg(color=color))
        upload(client, zhang, draft["id"], "insurance", jpeg(color=color))
        drafts.append(draft["id"])
    for draft_id in drafts:
        assert client.delete(f"{URL}/{draft_id}", headers=zhang["headers"]).status_code == 204
    clock.advance(seconds=deps.orphan_grace_seconds + 1)
    # Batches of two: the held evidence, oldest of all, never blocks the four behind it.
    swept = materials.sweep_orphans(db_session, deps, batch=2)
    assert swept["files"] == 4
    assert [f.id for f in db_session.scalars(select(ApplicationFile))] == [evidence]
    assert materials.sweep_orphans(db_session, deps, batch=2)["files"] == 0


def test_an_autosave_keeps_a_draft_alive(client, zhang, clock, db_session, services):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    clock.advance(days=services.applications.draft_ttl_days - 1)
    zhang = refreshed(client, zhang)
    assert patch(client, zhang, app, {"delivery": {"method": "window"}}).status_code == 200
    clock.advance(days=2)
    assert drafts.purge_expired_drafts(db_session) == 0


def test_uploading_reusing_or_removing_a_file_keeps_a_draft_alive(
    app, client, zhang, clock, db_session, services
):
    ttl = services.applications.draft_ttl_days
    earlier = _submitted(client, zhang)
    earlier_file = next(m["satisfied_by"][0]["file_id"] for m in earlier["materials"] if m["id"] == "id_card")
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    steps = (
        lambda: upload(client, zhang, draft["id"], "insurance", jpeg()),
        lambda: client.post(
            f"{URL}/{draft['id']}/materials/id_card/reuse",
            json={"file_id": earlier_file},
            headers=zhang["headers"],
        ),
        lambda: client.delete(
            f"{URL}/{draft['id']}/materials/id_card/files/{earlier_file}", headers=zhang["headers"]
        ),
    )
    for step in steps:
        clock.advance(days=ttl - 1)
        zhang = relogin(app, zhang)  # weeks pass: the citizen signs in again
        assert step().status_code in (200, 201, 204)
        clock.advance(days=2)  # past the expiry counted from creation or the previous step
        assert drafts.purge_expired_drafts(db_session) == 0
        zhang = relogin(app, zhang)  # weeks pass: the citizen signs in again
        assert get(client, zhang, draft["id"]).status_code == 200
    clock.advance(days=ttl + 1)
    assert drafts.purge_expired_drafts(db_session) == 1


def test_a_reuse_in_progress_keeps_its_file_from_the_orphan_sweep(client, zhang, clock, db_session, services):
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("row locks between two connections: PostgreSQL")
    deps = services.applications
    first = create(client, zhang, service_code=SS_CARD).get_json()
    file_id = upload(client, zhang, first["id"], "id_card", jpeg()).get_json()["id"]
    removed = client.delete(
        f"{URL}/{first['id']}/materials/id_card/files/{file_id}", headers=zhang["headers"]
    )
    assert removed.status_code == 204  # the file is an orphan now, and old enough to sweep
    second = create(client, zhang, service_code=SS_CARD).get_json()
    clock.advance(seconds=deps.orphan_grace_seconds + 1)
    key = db_session.get(ApplicationFile, file_id).storage_key
    db_session.rollback()
    # A reuse that has read its source FOR SHARE and attached it, and commits a moment later,
    # while the sweep runs.
    reusing = Session(bind=db.engine)
    reusing.scalar(select(ApplicationFile).where(ApplicationFile.id == file_id).with_for_update(read=True))
    reusing.add(
        ApplicationMaterial(application_id=second["id"], material_id="id_card", kind="reuse", file_id=file_id,
                            attached_at=clock.now())
    )  # fmt: skip
    reusing.flush()
    committer = threading.Timer(1.0, reusing.commit)
    committer.start()
    try:
        swept = materials.sweep_orphans(db_session, deps)
    finally:
        committer.join()
        reusing.close()
    assert swept["files"] == 0
    assert deps.storage.exists(key) and db_session.get(ApplicationFile, file_id) is not None
    body = get(client, refreshed(client, zhang), second["id"]).get_json()
    assert next(m for m in body["materials"] if m["id"] == "id_card")["satisfied"] is True
    _, stored = materials.read_file(db_session, deps, account_id=zhang["account_id"], file_id=file_id)
    assert stored[:3] == b"\xff\xd8\xff"  # the citizen's photo is still there to forward


def test_burden_is_measured_per_item(client, zhang, officer):
    _submitted(client, zhang)
    second = create(client, zhang, service_code=SS_CARD).get_json()
    offered = client.get(
        f"{URL}/{second['id']}/materials/id_card/files", headers=zhang["headers"]
    ).get_json()["reusable"]
    client.post(
        f"{URL}/{second['id']}/materials/id_card/reuse",
        json={"file_id": offered[0]["id"]},
        headers=zhang["headers"],
    )
    upload(client, zhang, second["id"], "insurance", jpeg())
    assert submit(client, zhang, get(client, zhang, second["id"]).get_json()).status_code == 200
    report = client.get(
        "/admin/v1/applications/burden", query_string={"service_code": SS_CARD}, headers=officer
    ).get_json()
    (row,) = report["items"]
    assert row["applications"] == 2
    # name, id number, phone prefilled both times; bank + outlet + delivery typed then reused.
    assert row["fields_prefilled"] == 3 + 6 and row["fields_typed"] == 3
    assert row["materials_uploaded"] == 3 and row["materials_without_upload"] == 1
    assert row["materials_reduced_share"] == 0.25
    # A case the citizen withdrew (to apply again, say) is not counted: it would count twice.
    withdrawn = client.post(f"{URL}/{second['id']}/withdraw", json={}, headers=zhang["headers"] | key())
    assert withdrawn.status_code == 200, withdrawn.get_json()
    again = client.get(
        "/admin/v1/applications/burden", query_string={"service_code": SS_CARD}, headers=officer
    ).get_json()
    assert again["items"][0]["applications"] == 1 and again["items"][0]["materials_without_upload"] == 0
    passport_only = client.get(
        "/admin/v1/applications/burden", query_string={"service_code": PASSPORT}, headers=officer
    )
    assert passport_only.get_json()["items"] == []
    assert client.get("/admin/v1/applications/burden", headers=zhang["headers"]).status_code == 401


class _Wallet:
    """An e-certificate source as the wallet (issue: shared government data) plugs in."""

    def references(self, ctx, materials):
        from domain.applications.references import Reference

        return [
            Reference(material_id, "ecert", f"cert-{ctx.account_id[:8]}")
            for material_id, material in materials.items()
            if "11100000000019713D001" in material["ecert_types"]
        ] + [Reference("photo", "ecert", "not-accepted")]  # photo accepts no certificate: ignored


def test_a_material_source_satisfies_materials_without_upload(client, zhang, services, monkeypatch):
    monkeypatch.setattr(services.applications, "material_sources", [_Wallet()])
    app = create(client, zhang, service_code=SS_CARD).get_json()
    by_id = {m["id"]: m for m in app["materials"]}
    assert by_id["id_card"]["satisfied"] and by_id["id_card"]["satisfied_by"][0]["kind"] == "ecert"
    assert by_id["id_card"]["satisfied_by"][0]["ref"].startswith("cert-")
    assert not by_id["photo"]["satisfied"]


def test_a_handler_event_applies_once(client, zhang, db_session):
    case = _submitted(client, zhang)
    _, applied = transitions.advance(
        db_session,
        app_id=case["id"],
        to="received",
        actor_type="province",
        actor_id=None,
        external_id="evt-1",
    )
    assert applied
    again, applied_again = transitions.advance(
        db_session,
        app_id=case["id"],
        to="received",
        actor_type="province",
        actor_id=None,
        external_id="evt-1",
    )
    assert not applied_again and again.status == "received"
    events = client.get(f"{URL}/{case['id']}/timeline", headers=zhang["headers"]).get_json()["events"]
    assert [e["status"] for e in events] == ["draft", "submitted", "received"]


def test_two_events_of_one_case_in_one_flush_are_numbered_in_turn(client, zhang, db_session):
    """The next seq is computed inside each event's INSERT: events added together (a batch of
    province callbacks for one case) still get consecutive numbers."""
    case = _submitted(client, zhang)
    row = db_session.get(Application, case["id"])
    now = clock.now()
    with db_session.no_autoflush:
        add_event(db_session, row, "submitted", "received", now, actor_type="province", actor_id=None)
        add_event(db_session, row, "received", "accepted", now, actor_type="province", actor_id=None)
    db_session.commit()
    events = client.get(f"{URL}/{case['id']}/timeline", headers=zhang["headers"]).get_json()["events"]
    assert [(e["seq"], e["status"]) for e in events] == [
        (1, "draft"),
        (2, "submitted"),
        (3, "received"),
        (4, "accepted"),
    ]


def test_a_bundle_is_one_burden_row_even_after_it_was_republished_with_another_first_item(
    client, zhang, officer, db_session
):
    ids = [create(client, zhang, bundle_id=NEWBORN).get_json()["id"] for _ in range(2)]
    assert all(ids)
    # Both were submitted; the bundle has since been republished with another first item, so
    # the second application was pinned to a different first code.
    for app_id, first_code, typed in ((ids[0], "FIRST-BEFORE", 2), (ids[1], "FIRST-AFTER", 3)):
        db_session.execute(
            update(Application)
            .where(Application.id == app_id)
            .values(
                status="submitted", submission_version=1, service_code=first_code,
                fields_prefilled=4, fields_typed=typed, materials_without_upload=1, materials_uploaded=1,
            )
        )  # fmt: skip
    db_session.commit()
    rows = client.get(
        "/admin/v1/applications/burden", query_string={"bundle_code": NEWBORN}, headers=officer
    ).get_json()["items"]
    assert [(r["kind"], r["bundle_code"], r["applications"], r["fields_typed"]) for r in rows] == [
        ("bundle", NEWBORN, 2, 5)
    ]


def test_a_supplement_opens_the_blanks_of_the_named_fields_group_and_no_others():
    leaves = ["name", "phone", "remark", "delivery.method", "delivery.address", "delivery.zip", "bank.outlet"]
    filled = {"name": {}, "delivery.method": {}, "delivery.zip": {}}
    assert transitions.blank_neighbours(leaves, ["delivery.method"], filled=filled) == ["delivery.address"]
    # A top-level field has no group: the other blank top-level fields stay locked.
    assert transitions.blank_neighbours(leaves, ["name"], filled=filled) == []


def test_a_supplement_cannot_ask_for_a_verified_field(client, zhang, officer):
    """The ID number came from the verified identity and is read-only for the citizen: a
    supplement naming it could never be answered, so the handler is told at once."""
    case = _submitted(client, zhang)
    stage(client, officer, case["id"], "received")
    asked = stage(client, officer, case["id"], "supplement_requested", note="请核对身份证号",
                  fields=["applicant.id_number", "applicant.phone"])  # fmt: skip
    assert asked.status_code == 422 and error_code(asked) == "application.invalid_patch"
    assert list(asked.get_json()["error"]["fields"]) == ["fields.applicant.id_number"]
    assert get(client, zhang, case["id"]).get_json()["status"] == "received"  # nothing moved
    ok = stage(client, officer, case["id"], "supplement_requested", note="请核对手机号",
               fields=["applicant.phone"])  # fmt: skip
    assert ok.status_code == 200 and ok.get_json()["status"] == "supplement_requested"


def test_a_calendar_override_moves_the_due_dates_of_the_cases_it_falls_within(
    app, client, zhang, officer, db_session
):
    """The arrangement for a year the holiday library does not know is entered when published,
    after cases counting through it were accepted: their due dates follow it (and its removal)."""
    from core import clock
    from domain.calendar import service as calendar
    from tests.domain.operators.factories import admin_headers, make_operator
    from tests.outbox_jobs import follow_calendar

    case = _submitted(client, zhang)
    stage(client, officer, case["id"], "received")
    accepted = date.fromisoformat(
        stage(client, officer, case["id"], "accepted").get_json()["expected_completion"]
    )
    editor = admin_headers(client, make_operator(app, username="cal-editor", roles=("catalog_editor",)))
    closed = calendar.add_working_days(
        db_session, clock.local_date(), 1, region="440100"
    )  # a working day ahead

    def override(region):
        body = {"date": closed.isoformat(), "region": region, "kind": "holiday", "reason": "台风停工"}
        made = client.post("/admin/v1/calendar/overrides", json=body, headers=editor | key())
        assert made.status_code == 201, made.get_json()
        follow_calendar()
        return made.get_json()["id"]

    def due():
        return date.fromisoformat(get(client, zhang, case["id"]).get_json()["expected_completion"])

    elsewhere = override("110000")  # Beijing's closure: not this case's region
    assert due() == accepted
    here = override("440100")
    assert due() == calendar.add_working_days(db_session, accepted, 1, region="440100") > accepted
    assert client.delete(f"/admin/v1/calendar/overrides/{here}", headers=editor | key()).status_code == 204
    follow_calendar()
    assert due() == accepted
    assert (
        client.delete(f"/admin/v1/calendar/overrides/{elsewhere}", headers=editor | key()).status_code == 204
    )
