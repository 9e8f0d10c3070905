"""Real success answers match what the OpenAPI document says of them (a client generated from
the document reads them by it): the catalog's search, an import report and the item list."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from api.idempotency import HEADER
from domain.catalog.importing import import_catalog
from domain.operators.audit_log import Actor
from tests.domain.catalog.factories import bundle, document, item, marriage_item
from tests.domain.operators.factories import admin_headers, make_operator

CARD, MARRIAGE = item(), marriage_item()


def _answer_schema(spec: dict, method: str, path: str) -> dict:
    """The documented 200 JSON body of an operation, every $ref replaced by what it names."""
    schemas = spec["components"]["schemas"]

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(schemas[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"])


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
    jsonschema.validate(body, _answer_schema(spec, "get", "/v1/services"))


def test_an_import_report_and_the_item_list(client: Any, spec: dict, editor: dict) -> None:
    changed = item() | {"visits": 0}
    report = client.post(
        "/admin/v1/catalog/import", query_string={"dry_run": "true"}, json=document(changed, MARRIAGE),
        headers=editor | {HEADER: "dry-1"},
    )  # fmt: skip
    assert report.status_code == 200 and report.get_json()["items"], report.get_json()
    jsonschema.validate(report.get_json(), _answer_schema(spec, "post", "/admin/v1/catalog/import"))
    listed = client.get("/admin/v1/catalog/items", headers=editor).get_json()
    assert listed["items"]
    jsonschema.validate(listed, _answer_schema(spec, "get", "/admin/v1/catalog/items"))
    one = client.get(f"/admin/v1/catalog/items/{CARD['code']}", headers=editor).get_json()
    jsonschema.validate(one, _answer_schema(spec, "get", "/admin/v1/catalog/items/{code}"))
