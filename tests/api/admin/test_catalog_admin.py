"""Catalog operations over HTTP: import report, dry run, roles, publish/suspend, CSV, burden, audit."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from core.audit import AuditEvent
from domain.catalog.models import Bundle, ServiceItem
from tests.domain.catalog.factories import bundle, document, item, marriage_item
from tests.domain.operators.factories import admin_headers, make_operator

URL = "/admin/v1/catalog"


def _editor(app, client, username="carol"):
    return admin_headers(client, make_operator(app, username=username, roles=("catalog_editor",)))


def test_only_catalog_editors_may_import(app, client, citizen):
    other = admin_headers(client, make_operator(app, username="dave", roles=("case_operator",)))
    assert client.post(f"{URL}/import", json=document(item()), headers=other).status_code == 403
    assert client.post(f"{URL}/import", json=document(item())).status_code == 401
    as_citizen = client.post(f"{URL}/import", json=document(item()), headers=citizen["headers"])
    assert as_citizen.status_code == 401


def test_a_bad_import_is_422_with_every_problem_and_writes_nothing(app, client, db_session):
    headers = _editor(app, client)
    broken = item(code="X" * 31)
    broken["materials"][0]["ecert_types"] = ["11100000000019713D777"]
    resp = client.post(f"{URL}/import", json=document(broken, item(), item()), headers=headers)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "catalog.import_invalid"
    paths = {(p["path"], p["code"]) for p in error["details"]["problems"]}
    assert ("items[0].code", "catalog.invalid_code") in paths
    assert ("items[0].materials[0].ecert_types[0]", "catalog.unknown_ecert_type") in paths
    assert ("items[2].code", "catalog.duplicate") in paths
    assert db_session.scalar(select(func.count()).select_from(ServiceItem)) == 0

    english = client.post(
        f"{URL}/import?dry_run=true", json=document(broken), headers={**headers, "Accept-Language": "en"}
    )
    assert english.status_code == 200
    report = english.get_json()
    assert report["ok"] is False and report["dry_run"] is True
    assert any(p["message"] == "No such e-certificate type" for p in report["problems"])


def test_import_publish_suspend_resume_with_an_audit_trail(app, client, db_session):
    headers = _editor(app, client)
    resp = client.post(f"{URL}/import", json=document(item(), marriage_item()), headers=headers)
    assert resp.status_code == 200, resp.get_json()
    code = item()["code"]
    assert resp.get_json()["items"][code] == "created"
    assert client.get(f"/v1/services/{code}").status_code == 404  # a draft is not public

    published = client.post(f"{URL}/items/{code}/publish", headers={**headers, "Idempotency-Key": "pub-1"})
    assert published.status_code == 200 and published.get_json()["published_version"] == 1
    replay = client.post(f"{URL}/items/{code}/publish", headers={**headers, "Idempotency-Key": "pub-1"})
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    again = client.post(f"{URL}/items/{code}/publish", headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "catalog.nothing_to_publish"
    assert client.get(f"/v1/services/{code}").status_code == 200

    assert client.post(f"{URL}/items/{code}/suspend", json={}, headers=headers).status_code == 422
    suspended = client.post(f"{URL}/items/{code}/suspend", json={"reason": "政策调整"}, headers=headers)
    assert suspended.get_json()["status"] == "suspended"
    assert client.get(f"/v1/services/{code}").status_code == 404
    assert (
        client.post(f"{URL}/items/{code}/resume", json={"reason": "恢复"}, headers=headers).status_code == 200
    )
    assert client.post(f"{URL}/items/NOPE/publish", headers=headers).status_code == 404

    auditor = admin_headers(client, make_operator(app, username="erin", roles=("auditor",)))
    trail = client.get("/admin/v1/audit", query_string={"target_id": code}, headers=auditor).get_json()
    actions = [e["action"] for e in trail]
    assert {
        "catalog.item.created",
        "catalog.item.publish",
        "catalog.item.suspend",
        "catalog.item.resume",
    } <= set(actions)
    operator_ids = set(db_session.scalars(select(AuditEvent.actor_id).where(AuditEvent.target_id == code)))
    assert len(operator_ids) == 1 and None not in operator_ids

    detail = client.get(f"{URL}/items/{code}", headers=headers).get_json()
    assert detail["status"] == "published" and [v["state"] for v in detail["versions"]] == ["published"]


def test_burden_figures_per_item_and_overall(app, client):
    headers = _editor(app, client)
    client.post(f"{URL}/import", json=document(item(), marriage_item(), publish=True), headers=headers)
    body = client.get(f"{URL}/burden", headers=headers).get_json()
    card = next(i for i in body["items"] if i["code"] == item()["code"])
    # 原身份证 (e-certificate) and 户口簿 (shared data) need no upload; the photo does.
    assert card["materials_total"] == 3 and card["materials_without_upload"] == 2
    assert card["material_reduction_rate"] == round(2 / 3, 4) and card["materials_to_upload"] == ["photo"]
    assert card["fields_total"] == 5 and card["fields_prefilled"] == 3
    assert body["total"]["materials_total"] == 5 and body["total"]["materials_without_upload"] == 4


def test_csv_export_and_reference_import(app, client, db_session):
    headers = _editor(app, client)
    client.post(f"{URL}/import", json=document(item(), publish=True), headers=headers)
    items_csv = client.get(f"{URL}/items.csv", headers=headers)
    rows = list(csv.DictReader(io.StringIO(items_csv.data.decode("utf-8-sig"))))
    assert rows[0]["code"] == item()["code"] and rows[0]["material_reduction_rate"] == "0.6667"

    upload = "code,name,name_en\nhealth,卫生健康,Health\n"
    dry = client.post(
        f"{URL}/reference/departments.csv?dry_run=true",
        data=upload.encode(),
        content_type="text/csv",
        headers=headers,
    )
    assert dry.status_code == 200 and dry.get_json()["ok"] is True
    assert (
        client.post(
            f"{URL}/reference/departments.csv", data=upload.encode(), content_type="text/csv", headers=headers
        ).status_code
        == 200
    )
    listed = client.get(f"{URL}/reference/departments.csv", headers=headers).data.decode("utf-8-sig")
    assert "health,卫生健康,Health" in listed
    bad = client.post(
        f"{URL}/reference/departments.csv",
        data=b"code,name\nBad Code,x\n",
        content_type="text/csv",
        headers=headers,
    )
    assert bad.status_code == 422
    # A sort that only looks numeric (a superscript passes str.isdigit) is a field error, not a 500.
    odd = client.post(
        f"{URL}/reference/categories.csv",
        data="code,name,sort\nbirth,生育收养,²\n".encode(),
        content_type="text/csv",
        headers=headers,
    )
    assert odd.status_code == 422, odd.get_json()
    assert "sort" in str(odd.get_json()), odd.get_json()
    # Streamed (chunked, no Content-Length) and longer than the CSV limit: refused, not imported.
    rows = app.config["MAX_JSON_BYTES"] // 12
    rows_csv = "code,name\n" + "".join(f"d{i:07d},dept {i}\n" for i in range(rows))
    streamed = client.post(
        f"{URL}/reference/departments.csv", input_stream=io.BytesIO(rows_csv.encode()),
        content_type="text/csv", headers=headers | {"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )  # fmt: skip
    assert streamed.status_code == 400 and "body" in streamed.get_json()["error"]["fields"], (
        streamed.get_json()
    )
    assert "d0000001" not in client.get(f"{URL}/reference/departments.csv", headers=headers).data.decode()


def test_export_is_importable(app, client):
    headers = _editor(app, client)
    client.post(f"{URL}/import", json=document(item(), marriage_item(), publish=True), headers=headers)
    exported = client.get(f"{URL}/export", headers=headers).get_json()
    again = client.post(f"{URL}/import?dry_run=true", json=exported, headers=headers).get_json()
    assert again["ok"] is True and set(again["items"].values()) == {"unchanged"}


def test_a_bundle_is_not_published_while_an_item_is_unpublished(app, client):
    headers = _editor(app, client)
    card, marriage = item(), marriage_item()
    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])])
    assert client.post(f"{URL}/import", json=doc, headers=headers).status_code == 200
    client.post(f"{URL}/items/{card['code']}/publish", headers=headers)

    refused = client.post(f"{URL}/bundles/YJS-TEST/publish", headers=headers)
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "catalog.bundle_items_unpublished"
    assert error["message"].startswith("该“一件事”中有事项未发布") and "结婚登记预约" in error["message"]
    assert [(i["code"], i["status"]) for i in error["details"]["items"]] == [(marriage["code"], "draft")]
    english = client.post(f"{URL}/bundles/YJS-TEST/publish", headers={**headers, "Accept-Language": "en"})
    assert english.status_code == 409 and "cannot be published" in english.get_json()["error"]["message"]
    assert marriage["code"] in english.get_json()["error"]["message"]
    assert client.get("/v1/bundles/YJS-TEST").status_code == 404  # nothing reached citizens

    client.post(f"{URL}/items/{marriage['code']}/publish", headers=headers)
    client.post(f"{URL}/items/{marriage['code']}/suspend", json={"reason": "系统升级"}, headers=headers)
    suspended = client.post(f"{URL}/bundles/YJS-TEST/publish", headers=headers).get_json()["error"]
    assert [i["status"] for i in suspended["details"]["items"]] == ["suspended"]

    client.post(f"{URL}/items/{marriage['code']}/resume", json={"reason": "恢复"}, headers=headers)
    published = client.post(f"{URL}/bundles/YJS-TEST/publish", headers=headers)
    assert published.status_code == 200 and published.get_json()["status"] == "published"
    assert client.get("/v1/bundles/YJS-TEST").status_code == 200


def test_a_bundle_is_not_resumed_while_an_item_is_suspended(app, client, db_session):
    headers = _editor(app, client)
    card, marriage = item(), marriage_item()
    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])], publish=True)
    assert client.post(f"{URL}/import", json=doc, headers=headers).status_code == 200
    client.post(f"{URL}/items/{marriage['code']}/suspend", json={"reason": "系统升级"}, headers=headers)
    suspended = client.post(f"{URL}/bundles/YJS-TEST/suspend", json={"reason": "系统升级"}, headers=headers)
    assert suspended.status_code == 200  # suspending stays allowed whatever its items are

    refused = client.post(f"{URL}/bundles/YJS-TEST/resume", json={"reason": "恢复"}, headers=headers)
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "catalog.bundle_items_unpublished"
    assert error["message"].startswith("该“一件事”中有事项未发布") and "结婚登记预约" in error["message"]
    assert [(i["code"], i["status"]) for i in error["details"]["items"]] == [(marriage["code"], "suspended")]
    english = client.post(
        f"{URL}/bundles/YJS-TEST/resume",
        json={"reason": "恢复"},
        headers={**headers, "Accept-Language": "en"},
    )
    assert english.status_code == 409 and marriage["code"] in english.get_json()["error"]["message"]
    resumes = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "catalog.bundle.resume")
    assert db_session.scalar(resumes) == 0
    assert db_session.scalar(select(Bundle.status).where(Bundle.code == "YJS-TEST")) == "suspended"

    client.post(f"{URL}/items/{marriage['code']}/resume", json={"reason": "恢复"}, headers=headers)
    resumed = client.post(f"{URL}/bundles/YJS-TEST/resume", json={"reason": "恢复"}, headers=headers)
    assert resumed.status_code == 200 and resumed.get_json()["status"] == "published"
    assert client.get("/v1/bundles/YJS-TEST").status_code == 200


def test_the_published_only_export_leaves_out_what_is_suspended(app, client):
    headers = _editor(app, client)
    card, marriage = item(), marriage_item()
    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])], publish=True)
    assert client.post(f"{URL}/import", json=doc, headers=headers).status_code == 200
    client.post(f"{URL}/items/{marriage['code']}/suspend", json={"reason": "系统升级"}, headers=headers)

    exported = client.get(f"{URL}/export?published_only=true", headers=headers).get_json()
    assert [i["code"] for i in exported["items"]] == [card["code"]]
    assert exported["bundles"] == []  # its marriage item is suspended: citizens cannot start it
    everything = client.get(f"{URL}/export", headers=headers).get_json()
    assert len(everything["items"]) == 2 and len(everything["bundles"]) == 1

    client.post(f"{URL}/items/{marriage['code']}/resume", json={"reason": "恢复"}, headers=headers)
    client.post(f"{URL}/bundles/YJS-TEST/suspend", json={"reason": "系统升级"}, headers=headers)
    exported = client.get(f"{URL}/export?published_only=true", headers=headers).get_json()
    assert len(exported["items"]) == 2 and exported["bundles"] == []


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text_and_read_back(app, client):
    """A department named like a formula opens as text in Excel/WPS (a leading apostrophe),
    and the exported file imported again changes nothing."""
    headers = _editor(app, client)
    formula = '=HYPERLINK("http://evil.example","点我")'
    upload = "code,name,name_en\n" + f'evil_dept,"{formula.replace(chr(34), chr(34) * 2)}",@SUM(1)\n'
    made = client.post(f"{URL}/reference/departments.csv", data=upload.encode(), content_type="text/csv",
                       headers=headers)  # fmt: skip
    assert made.status_code == 200 and made.get_json()["ok"] is True, made.get_json()
    listed = client.get(f"{URL}/reference/departments.csv", headers=headers).data.decode("utf-8-sig")
    row = next(r for r in csv.DictReader(io.StringIO(listed)) if r["code"] == "evil_dept")
    assert row["name"] == "'" + formula and row["name_en"] == "'@SUM(1)"
    again = client.post(f"{URL}/reference/departments.csv", data=listed.encode(), content_type="text/csv",
                        headers=headers)  # fmt: skip
    assert again.status_code == 200, again.get_json()
    exported = client.get(f"{URL}/export", headers=headers).get_json()
    kept = next(d for d in exported["reference"]["departments"] if d["code"] == "evil_dept")
    assert (kept["name"], kept["name_en"]) == (formula, "@SUM(1)")


def test_a_csv_row_with_more_values_than_columns_is_refused_whole(app, client):
    """An unquoted comma in a name shifts the row: refused with its line, nothing stored."""
    headers = _editor(app, client)
    upload = "code,name,name_en\nhealth,卫生健康,Health\npublic_security,公安,部,Public security\n"
    resp = client.post(f"{URL}/reference/departments.csv", data=upload.encode(), content_type="text/csv",
                       headers=headers)  # fmt: skip
    assert resp.status_code == 400 and "line 3" in resp.get_json()["error"]["fields"], resp.get_json()
    assert "第 3 行" in resp.get_json()["error"]["message"]
    listed = client.get(f"{URL}/reference/departments.csv", headers=headers).data.decode("utf-8-sig")
    assert "卫生健康,Health" not in listed and "public_security,公安,部" not in listed


def test_a_real_import_after_a_dry_run_with_the_same_key_imports(app, client):
    """A console sending one Idempotency-Key per document, for its dry run and then its import:
    the import is a request of its own, not a retry of the dry run."""
    headers = admin_headers(client, make_operator(app, username="carol", roles=("catalog_editor",)))
    headers = {**headers, "Idempotency-Key": "catalog-2026-12-07"}
    dry = client.post(f"{URL}/import?dry_run=true", json=document(item()), headers=headers)
    assert dry.status_code == 200 and dry.get_json()["dry_run"] is True
    real = client.post(f"{URL}/import", json=document(item()), headers=headers)
    assert real.status_code == 200 and real.get_json()["dry_run"] is False, real.headers.get(
        "Idempotent-Replayed"
    )
    assert client.get(f"{URL}/items/{item()['code']}", headers=headers).status_code == 200
    again = client.post(f"{URL}/import", json=document(item()), headers=headers)  # a retry of the import
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == real.get_json()
