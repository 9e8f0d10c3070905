"""The first page of GET /v1/applications is served from the per-account cache and dropped after
every committed change, whichever way the change was written (ORM or Core statements)."""

from __future__ import annotations

from core.redis import get_redis
from domain.applications.drafts import purge_expired_drafts
from tests.api.v1.applications.conftest import PASSPORT, SS_CARD, URL, create, patch, relogin


def _ids(client, who):
    return [a["id"] for a in client.get(URL, headers=who["headers"]).get_json()["items"]]


def test_the_list_is_cached_and_follows_every_change(app, client, zhang, clock, db_session):
    a = create(client, zhang, service_code=SS_CARD).get_json()
    clock.advance(5)
    b = create(client, zhang, service_code=PASSPORT).get_json()
    key = f"applications:{zhang['account_id']}"
    assert get_redis().get(key) == b"-"  # a change leaves a short tombstone: nothing cached yet
    get_redis().delete(key)  # as its 5 s run out
    assert _ids(client, zhang) == [b["id"], a["id"]]
    assert get_redis().get(key) not in (None, b"-")  # the page is now in the cache
    assert _ids(client, zhang) == [b["id"], a["id"]]  # and served from it

    clock.advance(5)
    saved = patch(client, zhang, a, {})  # a Core UPDATE
    assert saved.status_code == 200
    assert get_redis().get(key) == b"-"  # dropped at the commit
    get_redis().delete(key)
    items = client.get(URL, headers=zhang["headers"]).get_json()["items"]
    assert [(i["id"], i["updated_at"]) for i in items][1] == (a["id"], saved.get_json()["updated_at"])

    clock.advance(5)
    assert client.delete(f"{URL}/{b['id']}", headers=zhang["headers"]).status_code == 204  # ORM delete
    assert get_redis().get(key) == b"-"
    get_redis().delete(key)
    assert _ids(client, zhang) == [a["id"]]

    clock.advance(400 * 86400)  # long past the draft lifetime: the sweeper's purge (a Core DELETE)
    assert purge_expired_drafts(db_session) == 1
    assert get_redis().get(key) == b"-"
    assert _ids(client, relogin(app, zhang)) == []


def test_a_filtered_or_later_page_is_never_taken_from_the_cache(client, zhang, clock):
    a = create(client, zhang, service_code=SS_CARD).get_json()
    clock.advance(5)
    create(client, zhang, service_code=PASSPORT)
    _ids(client, zhang)
    first = client.get(URL + "?limit=1", headers=zhang["headers"]).get_json()
    second = client.get(URL + f"?limit=1&cursor={first['next_cursor']}", headers=zhang["headers"]).get_json()
    assert [x["id"] for x in second["items"]] == [a["id"]]
    drafts = client.get(URL + "?status=draft", headers=zhang["headers"]).get_json()["items"]
    assert len(drafts) == 2


def test_a_cached_page_is_served_only_in_its_language_and_on_its_day(app, client, zhang, clock, db_session):
    from datetime import timedelta

    from domain.applications.deadlines import local_date
    from domain.applications.models import Application

    a = create(client, zhang, service_code=SS_CARD).get_json()
    row = db_session.get(Application, a["id"])
    row.due_on = local_date(clock.now())  # due today: overdue from tomorrow on
    db_session.commit()
    key = f"applications:{zhang['account_id']}"
    get_redis().delete(key)
    zh = client.get(URL, headers=zhang["headers"]).get_json()["items"][0]
    assert zh["status_label"] == "草稿" and zh["overdue"] is False
    assert get_redis().get(key).startswith(b'{"limit": 20, "lang": "zh"')
    en = client.get(URL, headers={**zhang["headers"], "Accept-Language": "en"}).get_json()["items"][0]
    assert en["status_label"] != "草稿" and en["id"] == a["id"]
    clock.advance(timedelta(days=1).total_seconds())
    tomorrow = relogin(app, zhang)["headers"]
    cached = get_redis().get(key)
    assert cached is not None and b'"lang": "zh"' in cached  # still cached, but rendered yesterday
    assert client.get(URL, headers=tomorrow).get_json()["items"][0]["overdue"] is True


def test_an_english_page_of_bundles_reads_their_names_in_one_query(app, client, zhang):
    from sqlalchemy import event

    from core.db import db
    from tests.api.v1.applications.conftest import NEWBORN

    for _ in range(3):
        assert create(client, zhang, bundle_id=NEWBORN).status_code == 201
    create(client, zhang, service_code=SS_CARD)
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        # A filtered page is always read from the database (never from the cache).
        page = client.get(
            URL, query_string={"status": "draft"}, headers={**zhang["headers"], "Accept-Language": "en"}
        ).get_json()["items"]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    names = [a["service_name"] for a in page]
    assert len(names) == 4 and all(n.isascii() for n in names), names
    assert len([s for s in seen if "FROM catalog_bundles" in s]) == 1
