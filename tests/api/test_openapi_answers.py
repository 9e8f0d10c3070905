"""Real success answers match what the OpenAPI document says of them (a client generated from
the document reads them by it): the catalog's search, an import report, the item list, the
notification preferences and the key set."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from api.idempotency import HEADER
from domain.catalog.importing import import_catalog
from domain.operators.audit_log import Actor
from tests.api.openapi_schema import answer_schema
from tests.domain.catalog.factories import bundle, document, item, marriage_item
from tests.domain.operators.factories import admin_headers, make_operator

CARD, MARRIAGE = item(), marriage_item()


@pytest.fixture
def spec(client: Any) -> dict:
    return client.get("/openapi.json").get_json()


@pytest.fixture
def editor(app: Any, client: Any, db_session: Any) -> dict:
    doc = document(CARD, MARRIAGE, bundles=[bundle([CARD["code"], MARRIAGE["code"]])], publish=True)
    assert import_catalog(db_session, Actor(type="operator", id="op-1"), doc, dry_run=False).ok
    return admin_headers(client, make_operator(app, username="editor", roles=("catalog_editor",)))


def test_the_catalog_search_with_a_matching_bundle(client: Any, spec: dict, editor: dict) -> None:
    body = client.get("/v1/services", query_string={"q": "结婚"}).get_json()
    assert body["bundles"]  # the search names the bundle too
    jsonschema.validate(body, answer_schema(spec, "get", "/v1/services"))


def test_an_import_report_and_the_item_list(client: Any, spec: dict, editor: dict) -> None:
    changed = item() | {"visits": 0}
    report = client.post(
        "/admin/v1/catalog/import", query_string={"dry_run": "true"}, json=document(changed, MARRIAGE),
        headers=editor | {HEADER: "dry-1"},
    )  # fmt: skip
    assert report.status_code == 200 and report.get_json()["items"], report.get_json()
    jsonschema.validate(report.get_json(), answer_schema(spec, "post", "/admin/v1/catalog/import"))
    listed = client.get("/admin/v1/catalog/items", headers=editor).get_json()
    assert listed["items"]
    jsonschema.validate(listed, answer_schema(spec, "get", "/admin/v1/catalog/items"))
    one = client.get(f"/admin/v1/catalog/items/{CARD['code']}", headers=editor).get_json()
    jsonschema.validate(one, answer_schema(spec, "get", "/admin/v1/catalog/items/{code}"))


def test_notification_preferences_and_the_key_set(client: Any, spec: dict, citizen: dict) -> None:
    path = "/v1/me/notification-preferences"
    read = client.get(path, headers=citizen["headers"])
    assert read.status_code == 200 and read.get_json()["events"]
    jsonschema.validate(read.get_json(), answer_schema(spec, "get", path))
    put = client.put(path, json={"quiet_hours": False}, headers=citizen["headers"] | {HEADER: "p-1"})
    assert put.status_code == 200, put.get_json()
    jsonschema.validate(put.get_json(), answer_schema(spec, "put", path))
    keys = client.get("/.well-known/jwks.json").get_json()
    assert keys["keys"]
    jsonschema.validate(keys, answer_schema(spec, "get", "/.well-known/jwks.json"))
