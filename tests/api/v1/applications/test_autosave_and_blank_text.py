"""Autosave's conditions and merge patches (If-Match, racing saves, {} on a group), and text that
shows nothing at submission and resubmission."""

from __future__ import annotations

import threading

from tests.api.v1.applications.conftest import (
    SS_CARD,
    URL,
    create,
    error_code,
    get,
    patch,
    submit,
)
from tests.api.v1.applications.test_bad_input import _ready


def test_two_racing_patches_one_wins_the_other_gets_412(client, app, zhang):
    created = create(client, zhang, service_code=SS_CARD).get_json()
    results: list = []
    barrier = threading.Barrier(2)

    def save(bank: str) -> None:
        c = app.test_client()
        barrier.wait()
        results.append(patch(c, zhang, created, {"ss_card_application": {"bank": bank}}))

    threads = [threading.Thread(target=save, args=(b,)) for b in ("icbc", "ccb")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 412], [r.get_json() for r in results]
    loser = next(r for r in results if r.status_code == 412).get_json()["error"]
    assert loser["code"] == "application.version_conflict" and loser["details"]["current_revision"] == 2
    winner = next(r for r in results if r.status_code == 200).get_json()
    assert (
        get(client, zhang, created["id"]).get_json()["data"]["ss_card_application"]
        == winner["data"]["ss_card_application"]
    )


def test_stale_if_match_gets_the_current_revision(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    assert patch(client, zhang, app, {"delivery": {"method": "window"}}).status_code == 200
    stale = patch(client, zhang, app, {"delivery": {"method": "post"}})
    assert stale.status_code == 412 and stale.get_json()["error"]["details"] == {"current_revision": 2}
    assert get(client, zhang, app["id"]).get_json()["data"]["delivery"] == {"method": "window"}


def test_if_match_lists_match_any_of_their_etags_and_a_wildcard_is_told_what_to_send(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    url, body = f"{URL}/{app['id']}", {"data": {"delivery": {"method": "window"}}}
    wildcard = client.patch(url, json=body, headers=zhang["headers"] | {"If-Match": "*"})
    assert wildcard.status_code == 428 and error_code(wildcard) == "application.if_match_revision_required"
    assert "*" in wildcard.get_json()["error"]["message"]
    stale_list = client.patch(url, json=body, headers=zhang["headers"] | {"If-Match": '"r7", "r8"'})
    assert stale_list.status_code == 412 and stale_list.get_json()["error"]["details"] == {
        "current_revision": 1
    }
    listed = client.patch(url, json=body, headers=zhang["headers"] | {"If-Match": '"r7", W/"r1"'})
    assert listed.status_code == 200 and listed.get_json()["revision"] == 2
    assert get(client, zhang, app["id"]).get_json()["data"]["delivery"] == {"method": "window"}


def test_an_empty_object_on_a_group_changes_nothing_and_is_not_refused(client, zhang):
    """RFC 7396: {} merged into an object changes nothing. A phone that autosaves every group,
    untouched ones as {}, must not fail on the read-only applicant group, nor re-mark the
    verified fields as typed by the citizen."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    before = app["provenance"]["applicant.name"]
    saved = patch(
        client, zhang, app, {"applicant": {}, "ss_card_application": {}, "delivery": {"method": "post"}}
    )
    assert saved.status_code == 200, saved.get_json()
    after = saved.get_json()
    assert after["provenance"]["applicant.name"] == before and before["read_only"] is True
    assert after["data"]["applicant"] == app["data"]["applicant"]
    # Nothing but {}: a save like an empty one (a new revision, the draft kept longer), with no
    # empty group added where there was none.
    still = patch(client, zhang, after, {"ss_card_application": {}, "applicant": {}})
    assert still.status_code == 200 and still.get_json()["data"] == after["data"]
    assert "ss_card_application" not in get(client, zhang, app["id"]).get_json()["data"]
    after = still.get_json()
    # {} on a single field is still a wrong value, and on an unknown group still unknown.
    leaf = patch(client, zhang, after, {"delivery": {"method": {}}})
    assert leaf.status_code == 422 and "data.delivery.method" in leaf.get_json()["error"]["fields"]
    unknown = patch(client, zhang, after, {"nickname": {}})
    assert unknown.status_code == 422 and "data.nickname" in unknown.get_json()["error"]["fields"]


def test_text_that_shows_nothing_is_not_an_answer_at_submission(client, zhang):
    """Ideographic spaces (a Chinese keyboard types them) pass JSON Schema's minLength; the
    department must not get a postal order to a blank address."""
    app = _ready(client, zhang)
    blank = {
        "delivery": {"method": "post", "address": "\u3000" * 5},
        "ss_card_application": {"outlet": "\u200b "},
    }
    app = patch(client, zhang, app, blank).get_json()
    refused = submit(client, zhang, app)
    assert refused.status_code == 422 and error_code(refused) == "application.invalid"
    fields = refused.get_json()["error"]["fields"]
    assert set(fields) == {"data.delivery.address", "data.ss_card_application.outlet"}, fields
    assert fields["data.delivery.address"] == ["只填写了空白字符，请填写有效内容或清空"]
    assert get(client, zhang, app["id"]).get_json()["status"] == "draft"
    fixed = patch(
        client, zhang, get(client, zhang, app["id"]).get_json(),
        {"delivery": {"address": "广州市天河区体育西路 1 号"}, "ss_card_application": {"outlet": None}},
    ).get_json()  # fmt: skip
    done = submit(client, zhang, fixed)
    assert done.status_code == 200, done.get_json()


def test_a_resubmission_is_not_refused_for_blank_text_the_supplement_did_not_open(client, zhang, db_session):
    """A case submitted before blank-only text was checked holds an outlet of spaces; the supplement
    asks only for the collection method. The citizen cannot clear the outlet (not named), so it
    must not stop the resubmission; a named field of spaces still does."""
    from domain.applications import transitions
    from domain.applications.models import Application
    from domain.applications.prefill import decrypt_data, encrypt_data

    app = _ready(client, zhang)
    assert submit(client, zhang, app).status_code == 200
    row = db_session.get(Application, app["id"])
    encryptor = client.application.extensions["yiwang"].encryptor
    data = decrypt_data(encryptor, row.data_enc)
    data["ss_card_application"]["outlet"] = "   "  # as stored before the check existed
    row.data_enc = encrypt_data(encryptor, data)
    db_session.commit()
    for to, extra in (("received", {}), ("supplement_requested", {"fields": ["delivery.method"]})):
        transitions.advance(
            db_session, app_id=app["id"], to=to, actor_type="province", actor_id=None, **extra
        )
    blank = patch(client, zhang, get(client, zhang, app["id"]).get_json(), {"delivery": {"method": "\u3000"}})
    assert blank.status_code == 422  # not one of the choices: refused at once
    fixed = patch(client, zhang, get(client, zhang, app["id"]).get_json(), {"delivery": {"method": "post"}})
    assert fixed.status_code == 200, fixed.get_json()
    done = submit(client, zhang, get(client, zhang, app["id"]).get_json(), consent=False)
    assert done.status_code == 422 and set(done.get_json()["error"]["fields"]) == {"data.delivery.address"}
    address = {"delivery": {"address": "\u3000" * 6}}
    patched = patch(client, zhang, get(client, zhang, app["id"]).get_json(), address)
    assert patched.status_code == 200, patched.get_json()
    named = submit(client, zhang, get(client, zhang, app["id"]).get_json(), consent=False)
    assert named.status_code == 422 and set(named.get_json()["error"]["fields"]) == {"data.delivery.address"}
    address = {"delivery": {"address": "广州市天河区体育西路 1 号"}}
    assert patch(client, zhang, get(client, zhang, app["id"]).get_json(), address).status_code == 200
    again = submit(client, zhang, get(client, zhang, app["id"]).get_json(), consent=False)
    assert again.status_code == 200, again.get_json()


def test_a_stale_copy_of_a_case_submitted_elsewhere_learns_it_cannot_be_edited(client, zhang):
    """The tablet still holds revision 1; the phone filled and submitted the case meanwhile: the
    tablet's autosave is told the case cannot be changed, not to reload and try again."""
    phone = _ready(client, zhang)
    tablet = phone | {"revision": 1}
    done = submit(client, zhang, phone)
    assert done.status_code == 200, done.get_json()
    late = patch(client, zhang, tablet, {"delivery": {"method": "post"}})
    assert late.status_code == 409 and error_code(late) == "application.not_editable"


def test_the_etag_a_compressed_response_carries_works_as_if_match(client, zhang):
    created = client.post(
        URL, json={"service_code": SS_CARD}, headers=zhang["headers"] | {"Accept-Encoding": "gzip"}
    )
    etag = created.headers["ETag"]
    assert created.headers["Content-Encoding"] == "gzip" and "gzip" in etag  # rewritten by compression
    saved = client.patch(
        f"{URL}/{_id(created)}",
        json={"data": {"delivery": {"method": "window"}}},
        headers=zhang["headers"] | {"If-Match": etag},
    )
    assert saved.status_code == 200, (etag, saved.get_json())


def _id(resp):
    import gzip
    import json

    return json.loads(gzip.decompress(resp.get_data()))["id"]
