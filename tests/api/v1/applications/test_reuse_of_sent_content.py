"""The photo offered for reuse is the newest copy of its content; when that copy sits in
a draft never submitted while an older copy of the same photo went to a department, reusing it
must still count as spared (the department has this content)."""

from __future__ import annotations

from tests.api.v1.applications.conftest import SS_CARD, create, jpeg, upload
from tests.api.v1.applications.test_burden_of_reuse import _burden, _fill_and_submit, _reuse
from tests.api.v1.applications.test_lifecycle import _submitted


def test_a_photo_already_sent_counts_as_spared_though_offered_from_a_later_draft(
    client, zhang, officer, clock
):
    _submitted(client, zhang)  # the ID-card photo (jpeg()) went to the department
    clock.advance(60)
    abandoned = create(client, zhang, service_code=SS_CARD).get_json()
    assert upload(client, zhang, abandoned["id"], "id_card", jpeg()).status_code == 201  # same photo
    clock.advance(60)
    again = create(client, zhang, service_code=SS_CARD).get_json()
    material = _reuse(client, zhang, again["id"])  # the one entry offered: the draft's copy
    assert material["satisfied_by"][0]["kind"] == "reuse"
    _fill_and_submit(client, zhang, again)
    assert _burden(client, officer) == (1, 3)
