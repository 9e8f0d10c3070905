"""The measured burden counts a material as spared only when the citizen did not upload it for
this application: a file reused from a draft that was never submitted (abandoned, begun again)
was uploaded by the citizen all the same, and no department has it yet."""

from __future__ import annotations

from tests.api.v1.applications.conftest import SS_CARD, URL, create, get, jpeg, patch, submit, upload
from tests.api.v1.applications.test_lifecycle import _submitted


def _reuse(client, who, app_id, material="id_card"):
    (offered, *_) = client.get(
        f"{URL}/{app_id}/materials/{material}/files", headers=who["headers"]
    ).get_json()["reusable"]
    resp = client.post(
        f"{URL}/{app_id}/materials/{material}/reuse", json={"file_id": offered["id"]}, headers=who["headers"]
    )
    assert resp.status_code == 200, resp.get_json()
    return next(m for m in resp.get_json()["materials"] if m["id"] == material)


def _fill_and_submit(client, who, app):
    app = patch(
        client, who, app, {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    ).get_json()
    assert upload(client, who, app["id"], "insurance", jpeg(color="green")).status_code == 201
    done = submit(client, who, get(client, who, app["id"]).get_json())
    assert done.status_code == 200, done.get_json()


def _burden(client, officer):
    (row,) = client.get(
        "/admin/v1/applications/burden", query_string={"service_code": SS_CARD}, headers=officer
    ).get_json()["items"]
    return row["materials_without_upload"], row["materials_uploaded"]


def test_a_photo_from_an_abandoned_draft_counts_as_uploaded(client, zhang, officer):
    abandoned = create(client, zhang, service_code=SS_CARD).get_json()
    assert upload(client, zhang, abandoned["id"], "id_card", jpeg()).status_code == 201
    again = create(client, zhang, service_code=SS_CARD).get_json()
    _reuse(client, zhang, again["id"])
    _fill_and_submit(client, zhang, again)
    assert _burden(client, officer) == (0, 2)


def test_a_photo_from_a_submitted_application_counts_as_spared(client, zhang, officer):
    _submitted(client, zhang)  # two materials uploaded
    again = create(client, zhang, service_code=SS_CARD).get_json()
    material = _reuse(client, zhang, again["id"])
    assert material["satisfied_by"][0]["kind"] == "reuse"
    _fill_and_submit(client, zhang, again)
    assert _burden(client, officer) == (1, 3)
