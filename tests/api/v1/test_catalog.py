"""The phone-facing catalog: lists, filters, cursors, details, bundles, ETag/304, gzip, bad input."""

from __future__ import annotations

import gzip
import json

import pytest
from sqlalchemy import select

from domain.catalog.importing import import_catalog
from domain.catalog.models import Bundle
from domain.catalog.publishing import publish_item, set_item_status
from domain.catalog.revision import bump_revision
from domain.operators.audit_log import Actor
from tests.domain.catalog.factories import MZJ_USCC, bundle, document, item, marriage_item

ACTOR = Actor(type="operator", id="op-1")
CARD = item()
MARRIAGE = marriage_item()
ONLINE = item(
    "000105009000",
    "居住证签注",
    region="440000",
    level=2,
    visits=0,
    online_depth=4,
    keywords=["居住证续签"],
    fee={"charged": False},
)
ONLINE["implementing_body"] = {"name": "广东省公安厅", "uscc": ONLINE["implementing_body"]["uscc"]}


@pytest.fixture
def published(app, db_session):
    doc = document(CARD, MARRIAGE, ONLINE, bundles=[bundle([CARD["code"], MARRIAGE["code"]])], publish=True)
    report = import_catalog(db_session, ACTOR, doc, dry_run=False)
    assert report.ok, report.problems
    return report


def test_list_gives_compact_entries_with_cache_headers(client, published):
    resp = client.get("/v1/services")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["total"] == 3 and body["next_cursor"] is None
    entry = next(e for e in body["items"] if e["code"] == CARD["code"])
    assert entry["name"] == "居民身份证换领" and entry["department"]["name"] == "公安"
    assert entry["at_most_one_visit"] is True and entry["fully_online"] is False
    assert "materials" not in entry and "form" not in entry
    assert resp.headers["ETag"] and "public" in resp.headers["Cache-Control"]


def test_filters_narrow_the_list(client, published):
    def codes(**query):
        return {e["code"] for e in client.get("/v1/services", query_string=query).get_json()["items"]}

    assert codes(fully_online="true") == {ONLINE["code"]}
    assert codes(at_most_one_visit="true") == {CARD["code"], MARRIAGE["code"], ONLINE["code"]}
    assert codes(department="civil_affairs") == {MARRIAGE["code"]}
    assert codes(category="marriage") == {MARRIAGE["code"]}
    # A district sees its city's and its province's items; another province sees none of them.
    assert codes(region="440106") == {CARD["code"], MARRIAGE["code"], ONLINE["code"]}
    assert codes(region="310101") == set()
    assert codes(department="nope") == set()


def test_cursor_pages_through_everything_once(client, published):
    seen, cursor = [], None
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/services", query_string=query).get_json()
        seen += [e["code"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([CARD["code"], MARRIAGE["code"], ONLINE["code"]])
    bad = client.get("/v1/services", query_string={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "catalog.cursor_invalid"
    first = client.get("/v1/services", query_string={"limit": 1}).get_json()["next_cursor"]
    other = client.get("/v1/services", query_string={"limit": 1, "cursor": first, "category": "marriage"})
    assert other.status_code == 400  # a cursor belongs to the filters it was made for


@pytest.mark.parametrize("change", ["suspend_shown", "publish_before"])
def test_a_catalog_change_between_pages_neither_skips_nor_repeats(client, db_session, published, change):
    """A citizen scrolls while an operator suspends the item just shown (the rest moved up one:
    the next one was skipped) or publishes one sorting before it (the one shown came again)."""
    codes = [e["code"] for e in client.get("/v1/services", query_string={"limit": 50}).get_json()["items"]]
    first = client.get("/v1/services", query_string={"limit": 1}).get_json()
    [shown] = [e["code"] for e in first["items"]]
    if change == "suspend_shown":
        set_item_status(db_session, ACTOR, shown, suspend=True, reason="维护")
    else:
        # The shown item's department, one level up: sorts before it (catalog order is by code).
        earlier = item(basic="000100000000", level=2, name="新发布的事项", uscc=MZJ_USCC)
        assert import_catalog(db_session, ACTOR, document(earlier, publish=True), dry_run=False).ok
    rest, cursor = [], first["next_cursor"]
    while cursor:
        body = client.get("/v1/services", query_string={"limit": 1, "cursor": cursor}).get_json()
        rest += [e["code"] for e in body["items"]]
        cursor = body["next_cursor"]
    now = [e["code"] for e in client.get("/v1/services", query_string={"limit": 50}).get_json()["items"]]
    assert rest == [c for c in now if c > shown]  # catalog order is by code: all after it, once
    assert set(codes[1:]) <= set(rest)


def test_detail_has_guide_materials_and_form_and_answers_304(client, published):
    resp = client.get(f"/v1/services/{CARD['code']}")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["version"] == 1 and body["fee"] == {
        "charged": True,
        "amount": "20.00",
        "basis": "《居民身份证法》",
    }
    old_card = body["materials"][0]
    assert old_card["ecert_types"][0]["name"] == "居民身份证" and old_card["upload_needed"] is False
    assert body["materials"][2]["upload_needed"] is True
    assert body["form"]["schema"]["properties"]["applicant"]["required"] == ["name", "id_number", "phone"]
    assert body["form"]["prefill"]["applicant.name"]["source"] == "identity.name"
    assert body["form"]["ui"]["fields"]["reason.kind"]["enum_labels"]["expired"] == {
        "zh": "有效期满",
        "en": "Expired",
    }
    assert body["burden"]["materials_without_upload"] == 2 and body["burden"]["fields_prefilled"] == 3

    etag = resp.headers["ETag"]
    again = client.get(f"/v1/services/{CARD['code']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    stale = client.get(f"/v1/services/{CARD['code']}", headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200


def test_a_new_published_version_changes_the_etag(client, db_session, published):
    first = client.get(f"/v1/services/{CARD['code']}")
    import_catalog(db_session, ACTOR, document(item(fee={"charged": False}), publish=True), dry_run=False)
    second = client.get(f"/v1/services/{CARD['code']}", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.get_json()["version"] == 2
    assert second.headers["ETag"] != first.headers["ETag"]
    pinned = client.get(f"/v1/services/{CARD['code']}/versions/1")
    assert pinned.status_code == 200 and pinned.get_json()["fee"]["charged"] is True
    # Its department's name is today's: a renamed department shows within the catalog's max-age,
    # not a day later from a phone's or a CDN's copy.
    assert (
        pinned.headers["Cache-Control"] == client.get(f"/v1/services/{CARD['code']}").headers["Cache-Control"]
    )
    assert client.get(f"/v1/services/{CARD['code']}/versions/9").status_code == 404
    for beyond in (0, 2**31, 5826925689, 10**30):  # outside the column: not found, not a database error
        assert client.get(f"/v1/services/{CARD['code']}/versions/{beyond}").status_code == 404


def test_gzip_when_accepted_and_its_etag_validates_too(client, published):
    resp = client.get(f"/v1/services/{CARD['code']}", headers={"Accept-Encoding": "gzip, br"})
    assert resp.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in resp.headers["Vary"]
    assert json.loads(gzip.decompress(resp.data))["code"] == CARD["code"]
    again = client.get(
        f"/v1/services/{CARD['code']}",
        headers={"Accept-Encoding": "gzip", "If-None-Match": resp.headers["ETag"]},
    )
    assert again.status_code == 304
    plain = client.get(f"/v1/services/{CARD['code']}", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in plain.headers


@pytest.mark.parametrize(
    "path",
    [
        "/v1/services",
        "/v1/bundles",
        "/v1/categories",
        "/v1/departments",
        "/v1/bundles/YJS-TEST",
        "/v1/services?q=身份证",
    ],
)
def test_every_read_answers_304_to_its_own_etag(client, published, path):
    first = client.get(path)
    assert first.status_code == 200, first.get_json()
    assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_unknown_and_suspended_items_are_404(client, db_session, published):
    missing = client.get("/v1/services/NOPE", headers={"Accept-Language": "en"})
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "catalog.item_not_found"
    assert "not found" in missing.get_json()["error"]["message"]
    set_item_status(db_session, ACTOR, MARRIAGE["code"], suspend=True, reason="维护")
    assert client.get(f"/v1/services/{MARRIAGE['code']}").status_code == 404
    bundle_body = client.get("/v1/bundles/YJS-TEST").get_json()
    assert [i["available"] for i in bundle_body["items"]] == [True, False]


def test_bundle_detail_merges_the_form_asking_shared_groups_once(client, published):
    listed = client.get("/v1/bundles").get_json()["bundles"]
    assert listed[0]["code"] == "YJS-TEST" and listed[0]["items"] == 2
    body = client.get("/v1/bundles/YJS-TEST").get_json()
    props = body["form"]["schema"]["properties"]
    assert set(props) == {"applicant", "reason", "appointment"}
    assert body["form"]["ui"]["order"].count("applicant.name") == 1
    assert body["form"]["groups"][MARRIAGE["code"]] == ["applicant", "appointment"]
    assert body["outcomes"] == ["结婚证", "居民身份证"]
    assert client.get("/v1/bundles/NOPE").status_code == 404


@pytest.mark.parametrize(
    ("q", "status"),
    [
        ("", 200),
        ("   ", 200),
        ("!!!", 200),
        ("😀", 200),
        ("'; DROP TABLE service_items; --", 200),
        ("身" * 50, 200),
        ("身" * 51, 400),
        ("身份\x00证", 422),
        ("%", 200),
        ("ｓｈｅｎｆｅｎ", 200),
    ],
)
def test_odd_queries_get_a_sensible_answer_never_a_500(client, published, q, status):
    resp = client.get("/v1/services", query_string={"q": q})
    assert resp.status_code == status, resp.get_json()
    if status == 400:
        assert resp.get_json()["error"]["code"] == "catalog.query_invalid"
    if status == 422:
        assert resp.get_json()["error"]["fields"]["q"]


@pytest.mark.parametrize("pasted", ["\u200b居民身份证", "居民身份证\ufeff", "居民\u200d身份证"])
def test_invisible_characters_pasted_with_a_query_are_dropped(client, published, pasted):
    """Text copied from a chat app carries zero-width spaces and byte-order marks."""
    plain = client.get("/v1/services", query_string={"q": "居民身份证"}).get_json()
    resp = client.get("/v1/services", query_string={"q": pasted})
    assert resp.status_code == 200, resp.get_json()
    assert [e["code"] for e in resp.get_json()["items"]] == [e["code"] for e in plain["items"]]


def test_bad_filters_are_400(client, published):
    region = client.get("/v1/services", query_string={"region": "12"})
    assert region.status_code == 400 and region.get_json()["error"]["fields"]["region"]
    wide = client.get("/v1/services", query_string={"region": "44０１０６"})  # full-width digits
    assert wide.status_code == 400 and wide.get_json()["error"]["fields"]["region"]
    assert client.get("/v1/services", query_string={"limit": 0}).status_code == 422
    assert client.get("/v1/services", query_string={"limit": 51}).status_code == 422


def test_search_finds_by_colloquial_keyword(client, published):
    body = client.get("/v1/services", query_string={"q": "结婚"}).get_json()
    assert body["items"][0]["code"] == MARRIAGE["code"]
    assert body["bundles"] == ["YJS-TEST"]


def test_search_by_one_character_and_not_by_one_shared_character(client, published):
    def names(q):
        return [e["name"] for e in client.get("/v1/services", query_string={"q": q}).get_json()["items"]]

    assert names("婚") == ["结婚登记预约"]
    # Names holding 证 first, then an item that only has it in a keyword (领证).
    found = names("证")
    assert set(found[:2]) == {"居民身份证换领", "居住证签注"} and found[2:] == ["结婚登记预约"]
    # 驾驶证 shares only 证 with them: nothing matches, rather than the wrong service.
    assert names("驾驶证") == []


@pytest.fixture
def fast_path(app):
    """The WSGI fast path serves only while a snapshot is fresh: give it a minute, and count
    what still reaches Flask."""
    model = app.extensions["yiwang"].catalog
    fast = app.wsgi_app
    inner, reached = fast.app, []

    def counting(environ, start_response):
        reached.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    fast.app, model._refresh = counting, 60.0
    yield reached
    fast.app, model._refresh = inner, 0.0


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_the_fast_path_answers_exactly_like_the_view(client, published, fast_path, encoding):
    url = f"/v1/services/{CARD['code']}"
    headers = {"Accept-Encoding": encoding, "X-Request-ID": "phone-req-0001"}
    slow = client.get(url, headers=headers)  # renders the detail through Flask
    assert fast_path == [url]
    fast = client.get(url, headers=headers)
    assert fast_path == [url]  # the second one never reached Flask
    assert fast.status_code == slow.status_code == 200 and fast.data == slow.data
    for name in ("ETag", "Cache-Control", "Vary", "Content-Type", "Content-Encoding", "Content-Length",
                 "X-Content-Type-Options", "X-Request-ID"):  # fmt: skip
        assert fast.headers.get(name) == slow.headers.get(name), name
    not_modified = client.get(url, headers={**headers, "If-None-Match": slow.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert not_modified.headers["ETag"] == slow.headers["ETag"] and fast_path == [url]


def test_the_fast_path_leaves_everything_else_to_flask(client, published, fast_path):
    client.get(f"/v1/services/{CARD['code']}")
    client.get(f"/v1/services/{CARD['code']}?x=1")
    client.get(f"/v1/services/{'Z' * 31}")
    client.post(f"/v1/services/{CARD['code']}")
    assert len(fast_path) == 4
    assert client.get(f"/v1/services/{'Z' * 31}").status_code == 404


def test_a_bundle_with_a_suspended_item_is_not_offered_and_says_why(client, db_session, published):
    def offered():
        listed = [b["code"] for b in client.get("/v1/bundles").get_json()["bundles"]]
        suggested = client.get("/v1/services", query_string={"q": "结婚"}).get_json()["bundles"]
        return listed, suggested

    assert offered() == (["YJS-TEST"], ["YJS-TEST"])
    assert client.get("/v1/bundles/YJS-TEST").get_json()["available"] is True
    set_item_status(db_session, ACTOR, MARRIAGE["code"], suspend=True, reason="系统升级")

    assert offered() == ([], [])  # starting it would fail: not in the list, not suggested
    detail = client.get("/v1/bundles/YJS-TEST")  # a phone holding a link still gets an answer
    assert detail.status_code == 200
    body = detail.get_json()
    assert body["available"] is False
    assert body["unavailable_reason"] == "暂时无法办理：其中“结婚登记预约”已暂停办理"
    # English readers get the item's English name, not its Chinese one.
    assert body["unavailable_reason_en"] == f"Not available for now: {MARRIAGE['name_en']} is suspended"
    assert body["items"][1] == {
        "code": MARRIAGE["code"], "name": "结婚登记预约", "name_en": MARRIAGE["name_en"], "available": False
    }  # fmt: skip

    set_item_status(db_session, ACTOR, MARRIAGE["code"], suspend=False, reason="恢复")
    assert offered() == (["YJS-TEST"], ["YJS-TEST"])
    body = client.get("/v1/bundles/YJS-TEST").get_json()
    assert body["available"] is True and body["unavailable_reason"] is None


def test_a_bundle_over_an_unpublished_item_is_not_offered(app, client, db_session):
    # Bundles published over a draft item before publishing checked its items may still exist.
    doc = document(CARD, MARRIAGE, bundles=[bundle([CARD["code"], MARRIAGE["code"]])])
    assert import_catalog(db_session, ACTOR, doc, dry_run=False).ok
    publish_item(db_session, ACTOR, CARD["code"])
    stored = db_session.scalar(select(Bundle).where(Bundle.code == "YJS-TEST"))
    stored.status, stored.published_document, stored.version = "published", stored.document, 1
    bump_revision(db_session)
    db_session.commit()

    assert client.get("/v1/bundles").get_json()["bundles"] == []
    assert client.get("/v1/services", query_string={"q": "结婚"}).get_json()["bundles"] == []
    body = client.get("/v1/bundles/YJS-TEST").get_json()
    assert body["available"] is False and "“结婚登记预约”尚未开放办理" in body["unavailable_reason"]


def test_search_suggests_only_bundles_of_the_chosen_region_and_category(client, published):
    def suggested(**query):
        return client.get("/v1/services", query_string={"q": "结婚", **query}).get_json()["bundles"]

    assert suggested() == ["YJS-TEST"]  # a Guangzhou (440100) bundle in the marriage category
    assert suggested(region="440106") == ["YJS-TEST"]  # a Guangzhou district sees its city's
    assert suggested(category="marriage") == ["YJS-TEST"]
    assert suggested(region="310101") == []  # Shanghai
    assert suggested(region="440300") == []  # Shenzhen, same province
    assert suggested(category="hukou_id") == []


def test_a_bad_region_is_explained_in_the_citizens_language(client, published):
    for region, zh in (
        ("4401", "须为 6 位 GB/T 2260 行政区划代码"),
        ("990100", "GB/T 2260 中没有这一省级代码"),
    ):
        chinese = client.get("/v1/services", query_string={"region": region}).get_json()["error"]
        assert chinese["fields"] == {"region": [zh]}, chinese
        english = client.get(
            "/v1/services", query_string={"region": region}, headers={"Accept-Language": "en"}
        ).get_json()["error"]
        assert english["fields"]["region"][0].isascii() and "GB/T 2260" in english["fields"]["region"][0]
