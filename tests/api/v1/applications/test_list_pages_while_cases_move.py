"""The phone's list of applications, paged by cursor while the cases in it change: a case that
changes meanwhile (an autosave on the other device, a stage of the department) is not missed by
the pages that follow."""

from __future__ import annotations

from tests.api.v1.applications.conftest import SS_CARD, URL, create, patch


def _page(client, who, cursor=None, **query):
    query = {"limit": 2, **query} | ({"cursor": cursor} if cursor else {})
    return client.get(URL, query_string=query, headers=who["headers"]).get_json()


def _all_pages(client, who, first, change, **query):
    seen = [i["id"] for i in first["items"]]
    cursor = first["next_cursor"]
    change()
    while cursor:
        page = _page(client, who, cursor, **query)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    return seen


def test_a_draft_saved_on_the_other_device_while_paging_is_not_skipped(client, zhang, clock):
    apps = []
    for _ in range(5):
        apps.append(create(client, zhang, service_code=SS_CARD).get_json())
        clock.advance(60)
    first = _page(client, zhang)
    oldest = apps[0]  # on the last page, not seen yet

    def autosave_oldest():
        clock.advance(60)
        saved = patch(client, zhang, oldest, {"ss_card_application": {"bank": "icbc"}})
        assert saved.status_code == 200, saved.get_json()

    seen = _all_pages(client, zhang, first, autosave_oldest)
    assert sorted(seen) == sorted(a["id"] for a in apps)  # each once, none missing
    assert len(seen) == len(set(seen))
