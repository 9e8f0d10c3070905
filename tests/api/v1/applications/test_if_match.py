"""If-Match on an autosave: missing (428), stale (412), and a value that is no ETag at all (400:
the client sent the header, so "send If-Match" would send it round in circles)."""

from __future__ import annotations

import pytest

from tests.api.v1.applications.conftest import SS_CARD, URL, create, error_code, get

BODY = {"data": {"delivery": {"method": "window"}}}


def _save(client, who, app_id, if_match=None, lang="zh-CN"):
    headers = (
        who["headers"] | {"Accept-Language": lang} | ({} if if_match is None else {"If-Match": if_match})
    )
    return client.patch(f"{URL}/{app_id}", json=BODY, headers=headers)


@pytest.mark.parametrize(
    "value",
    ["abc", "r", '"abc"', 'W/"abc"', '"r1", abc', '"r1", *', "W/", '"r³"', "r1 r2", "\u00e9t\u00e9", ","],
)
def test_an_if_match_that_is_no_etag_is_a_400_saying_what_to_send(client, zhang, value):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    zh = _save(client, zhang, app["id"], value)
    assert zh.status_code == 400 and error_code(zh) == "request.bad_if_match", (value, zh.get_json())
    assert "If-Match" in zh.get_json()["error"]["message"] and '"r' in zh.get_json()["error"]["message"]
    assert "ETag" in zh.get_json()["error"]["message"]
    en = _save(client, zhang, app["id"], value, lang="en")
    assert en.status_code == 400 and error_code(en) == "request.bad_if_match"
    assert (
        "not a valid ETag" in en.get_json()["error"]["message"] and '"r' in en.get_json()["error"]["message"]
    )
    after = get(client, zhang, app["id"]).get_json()
    assert after["revision"] == 1 and after["data"].get("delivery") == app["data"].get("delivery")


def test_missing_stale_and_good_if_match_keep_their_answers(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    for missing in (None, "", "   "):
        resp = _save(client, zhang, app["id"], missing)
        assert resp.status_code == 428 and error_code(resp) == "application.if_match_required", missing
    stale = _save(client, zhang, app["id"], '"r7"')
    assert stale.status_code == 412 and error_code(stale) == "application.version_conflict"
    assert stale.get_json()["error"]["details"] == {"current_revision": 1}
    assert get(client, zhang, app["id"]).get_json()["revision"] == 1
    # Every form the API's ETag reaches a client in (weak, compressed, a list with an empty
    # element, RFC 9110) is still read as the revision it names.
    for n, good in enumerate(('"r1"', 'W/"r2"', '"r3:gzip"', '"r4-gzip"', 'W/"r9", "r5",', "r6", '"7"')):
        saved = _save(client, zhang, app["id"], good)
        assert saved.status_code == 200 and saved.get_json()["revision"] == n + 2, (good, saved.get_json())
