"""Three seeded items and one bundle, end to end as a phone would do it: create (prefilled),
fill what is missing, upload the required materials, submit, answer a supplement request,
resubmit, and follow the case to its result."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from domain.applications.models import ForwardingOutbox
from tests.api.v1.applications.conftest import (
    NEWBORN,
    PASSPORT,
    SS_CARD,
    URL,
    create,
    get,
    jpeg,
    missing_data,
    patch,
    pdf,
    stage,
    submit,
    upload,
)

ELDERLY_CARD = "11440100MB2C5091313000120030000"  # 老年人优待证办理


@pytest.mark.parametrize(
    "target",
    [
        {"service_code": SS_CARD},
        {"service_code": PASSPORT},
        {"service_code": ELDERLY_CARD},
        {"bundle_id": NEWBORN},
    ],
    ids=["ss-card", "passport", "elderly-card", "newborn-bundle"],
)
def test_walkthrough(client, zhang, officer, db_session, target):
    created = create(client, zhang, **target)
    assert created.status_code == 201, created.get_json()
    app = created.get_json()
    assert app["provenance"]["applicant.name"]["read_only"] is True  # prefilled, verified
    form = client.get(f"{URL}/{app['id']}/form", headers=zhang["headers"]).get_json()
    typed = missing_data(form["schema"], app["data"])
    saved = patch(client, zhang, app, typed)
    assert saved.status_code == 200, saved.get_json()
    for material in saved.get_json()["materials"]:
        if material["requirement"] == "required":
            body = pdf() if len(material["id"]) % 2 else jpeg()
            assert upload(client, zhang, app["id"], material["id"], body).status_code == 201
    app = get(client, zhang, app["id"]).get_json()
    assert all(m["satisfied"] for m in app["materials"] if m["requirement"] == "required")
    first = submit(client, zhang, app)
    assert first.status_code == 200, first.get_json()
    case_number = first.get_json()["case_number"]

    assert stage(client, officer, app["id"], "received").status_code == 200
    field = next(iter(typed_paths(typed)))
    material = next(m["id"] for m in app["materials"] if m["requirement"] == "required")
    asked = stage(
        client,
        officer,
        app["id"],
        "supplement_requested",
        note="请更正",
        fields=[field],
        materials=[material],
    )
    assert asked.status_code == 200, asked.get_json()
    current = get(client, zhang, app["id"]).get_json()
    assert current["editable_fields"][0] == field  # and the blanks beside it, if any
    assert all(p.rpartition(".")[0] == field.rpartition(".")[0] for p in current["editable_fields"])
    assert [m["id"] for m in current["materials"] if m["editable"]] == [material]
    assert upload(client, zhang, app["id"], material, jpeg(color="white")).status_code == 201
    again = submit(client, zhang, current, consent=False)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["submission_version"] == 2 and again.get_json()["case_number"] == case_number

    for to, extra in (("accepted", {}), ("completed", {"result": "approved"}), ("result_delivered", {})):
        assert stage(client, officer, app["id"], to, **extra).status_code == 200
    final = get(client, zhang, app["id"]).get_json()
    english = client.get(
        f"{URL}/{app['id']}", headers=zhang["headers"] | {"Accept-Language": "en"}
    ).get_json()
    assert english["service_name"] != final["service_name"] and english["service_name"].isascii()
    assert final["status"] == "result_delivered" and final["result_label"] == "准予办理"
    rows = db_session.scalars(
        select(ForwardingOutbox.kind)
        .where(ForwardingOutbox.application_id == app["id"])
        .order_by(ForwardingOutbox.submission_version)
    ).all()
    assert rows == ["submit", "resubmit"]

    by = (
        {"bundle_code": target["bundle_id"]}
        if "bundle_id" in target
        else {"service_code": target["service_code"]}
    )
    (row,) = client.get("/admin/v1/applications/burden", query_string=by, headers=officer).get_json()["items"]
    assert row["applications"] == 1 and row["service_name"] == final["service_name"]
    assert row["kind"] == final["kind"] and row["bundle_code"] == target.get("bundle_id")
    assert row["fields_prefilled"] >= 2 and row["materials_uploaded"] >= 1
    if "bundle_id" in target:  # nobody applied for the bundle's first item on its own
        alone = {"service_code": final["service_code"]}
        assert client.get(
            "/admin/v1/applications/burden", query_string=alone, headers=officer
        ).get_json() == {"items": []}


def typed_paths(data: dict, prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        out += typed_paths(value, path) if isinstance(value, dict) else [path]
    return out
