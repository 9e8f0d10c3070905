"""The earlier uploads offered for reuse: one entry per photo however many applications used
it, and none the application already holds."""

from __future__ import annotations

from tests.api.v1.applications.conftest import SS_CARD, URL, create, jpeg, upload
from tests.api.v1.applications.test_lifecycle import _submitted


def _offered(client, who, app_id, material="id_card"):
    resp = client.get(f"{URL}/{app_id}/materials/{material}/files", headers=who["headers"])
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["reusable"]


def test_the_same_photo_used_twice_is_offered_once(client, zhang, clock):
    _submitted(client, zhang)  # the ID-card photo uploaded…
    clock.advance(60)
    _submitted(client, zhang)  # …and the same photo again for the next application
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    offered = _offered(client, zhang, draft["id"])
    assert len(offered) == 1
    other = jpeg(color="blue")  # a different photo is a choice of its own
    later = create(client, zhang, service_code=SS_CARD).get_json()
    assert upload(client, zhang, later["id"], "id_card", other).status_code == 201
    assert len(_offered(client, zhang, draft["id"])) == 2


def test_a_file_the_application_already_holds_is_not_offered_again(client, zhang):
    _submitted(client, zhang)
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    (offered,) = _offered(client, zhang, draft["id"])
    reused = client.post(
        f"{URL}/{draft['id']}/materials/id_card/reuse",
        json={"file_id": offered["id"]},
        headers=zhang["headers"],
    )
    assert reused.status_code == 200
    assert _offered(client, zhang, draft["id"]) == []


def test_a_photo_uploaded_here_again_is_not_offered_as_an_earlier_one(client, zhang):
    _submitted(client, zhang)
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    assert upload(client, zhang, draft["id"], "id_card", jpeg()).status_code == 201  # the same photo
    assert _offered(client, zhang, draft["id"]) == []
