"""Catalog operations (role catalog_editor): import/export, publish, suspend, burden figures.

Imports are all-or-nothing: with problems nothing is written and every problem is reported with
its item and field path; `?dry_run=true` only reports. Each change is audited with the operator
(`GET /admin/v1/audit?target_id=<code>` shows who changed what).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from marshmallow import fields, validate

from api.admin import csv_cells
from api.admin.security import BEARER_SECURITY, current_actor, require_operator, role_guard
from api.blueprint import Blueprint
from api.errors import ErrorSchema
from api.i18n import language
from api.idempotency import idempotent
from api.json_body import read_by_hand
from api.openapi_answers import (
    BOOLEAN,
    INTEGER,
    NULLABLE_INTEGER,
    NULLABLE_STRING,
    OBJECT,
    STRING,
    array_of,
    json_answer,
    object_of,
    text_answer,
)
from api.request_body import whole_body
from api.schemas import StrictSchema
from core.db import db
from core.errors import Text
from domain.catalog.errors import ImportRejected, InvalidQuery, InvalidUpload
from domain.catalog.export import export_catalog
from domain.catalog.importing import ImportReport, import_catalog
from domain.catalog.models import ITEM_STATUSES
from domain.catalog.publishing import publish_bundle, publish_item, set_bundle_status, set_item_status
from domain.catalog.reference import LISTS
from domain.catalog.summary import burden, catalog_burden
from domain.catalog.versions import admin_item, item_versions, list_admin_items
from domain.operators.models import ROLE_CATALOG_EDITOR

blp = Blueprint(
    "admin_catalog", __name__, url_prefix="/admin/v1/catalog", description="事项目录管理 / Catalog operations"
)
blp.before_request(require_operator)
blp.before_request(role_guard(ROLE_CATALOG_EDITOR))

_CSV_COLUMNS = {
    "departments": ("code", "name", "name_en"),
    "categories": ("code", "name", "name_en", "audience", "sort"),
    "ecert_types": ("code", "name", "issuer"),
}
_ITEM_CSV = (
    "code",
    "basic_code",
    "name",
    "status",
    "published_version",
    "latest_version",
    "type",
    "department",
    "region",
    "visits",
    "online_depth",
    "min_level",
    "materials_total",
    "materials_without_upload",
    "material_reduction_rate",
    "fields_total",
    "fields_prefilled",
    "field_prefill_rate",
)


class DryRunSchema(StrictSchema):
    dry_run = fields.Boolean(load_default=False, metadata={"description": "only validate and report"})


class ExportQuerySchema(StrictSchema):
    published_only = fields.Boolean(load_default=False)


class ItemsQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(ITEM_STATUSES))


class ReasonSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


_OUTCOMES = {
    "type": "object",
    "additionalProperties": STRING,
    "description": "code → what the import did with it (unchanged, created, draft_updated, ...)",
}
_PROBLEM = object_of(**dict.fromkeys(("path", "subject", "code", "message", "detail"), NULLABLE_STRING))
_IMPORTED = json_answer(
    "what was (or, in a dry run, would be) imported, and every problem found",
    object_of(
        ok=BOOLEAN,
        dry_run=BOOLEAN,
        publish=BOOLEAN,
        problems=array_of(_PROBLEM),
        items=_OUTCOMES,
        bundles=_OUTCOMES,
        reference=OBJECT,
    ),  # fmt: skip
)
_ITEM_ROW = object_of(
    code=STRING, basic_code=STRING, name=STRING, status=STRING, published_version=NULLABLE_INTEGER,
    latest_version=INTEGER, type=STRING, department=STRING, region=STRING, visits=INTEGER,
    online_depth=INTEGER | {"enum": [1, 2, 3, 4]}, min_level=STRING, burden=OBJECT,
)  # fmt: skip
_ITEM = {"allOf": [_ITEM_ROW, object_of(document=OBJECT, versions=array_of())]}
_STATUS = json_answer(
    "the item's or bundle's status after the change",
    object_of(code=STRING, status=STRING, published_version=NULLABLE_INTEGER, version=NULLABLE_INTEGER),
)
_CSV = text_answer("CSV with a header row (UTF-8 with BOM)", "text/csv")


def _report(report: ImportReport) -> dict[str, Any]:
    lang = language()
    return {
        "ok": report.ok,
        "dry_run": report.dry_run,
        "publish": report.published,
        "problems": [p.as_dict(lang) for p in report.problems],
        "items": report.items,
        "bundles": report.bundles,
        "reference": report.reference,
    }


def _import(document: Any, dry_run: bool) -> Response:
    report = import_catalog(db.session(), current_actor(), document, dry_run=dry_run)
    if not report.ok and not dry_run:
        raise ImportRejected(problems=[p.as_dict(language()) for p in report.problems])
    return jsonify(_report(report))


@blp.route("/import")
class Import(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
        responses={200: _IMPORTED},
    )
    @blp.arguments(DryRunSchema, location="query", as_kwargs=True)
    @blp.alt_response(
        422, schema=ErrorSchema, description="problems found; nothing imported (details.problems)"
    )
    @idempotent
    @read_by_hand
    def post(self, dry_run: bool) -> Response:
        """Import reference lists, items and bundles (format: docs/catalog-format.md)."""
        document = request.get_json(silent=True)
        if document is None:
            raise InvalidUpload(
                problem=Text("the body must be a JSON object", "请求体须为 JSON 对象"),
                fields={"body": [Text("a JSON object", "须为 JSON 对象")]},
            )
        return _import(document, dry_run)


def _unknown_list(name: str) -> InvalidQuery:
    lists = ", ".join(LISTS)
    return InvalidQuery(
        problem=Text(f"no list {name}", f"未知列表 {name}"),
        fields={"name": [Text(f"one of {lists}", f"须为 {lists} 之一")]},
    )


@blp.route("/reference/<string:name>.csv")
class ReferenceCsv(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _CSV})
    def get(self, name: str) -> Response:
        """A reference list as CSV (departments, categories, ecert_types)."""
        if name not in LISTS:
            raise _unknown_list(name)
        rows = export_catalog(db.reader(), published_only=False)["reference"][name]
        return _csv(_CSV_COLUMNS[name], rows, f"{name}.csv")

    @idempotent
    @blp.doc(
        security=BEARER_SECURITY,
        requestBody={"content": {"text/csv": {"schema": {"type": "string"}}}},
        responses={200: _IMPORTED},
    )
    @blp.arguments(DryRunSchema, location="query", as_kwargs=True)
    def post(self, name: str, dry_run: bool) -> Response:
        """Replace-or-add a reference list from CSV with a header row (same validation as JSON)."""
        if name not in LISTS:
            raise _unknown_list(name)
        if request.mimetype != "text/csv":
            raise InvalidUpload(
                problem=Text("send it as text/csv", "请以 text/csv 格式提交"),
                fields={"body": [Text("send text/csv", "须为 text/csv")]},
            )
        body = whole_body()  # a chunked CSV longer than the request limit is refused, not cut short
        if len(body) > current_app.config["MAX_JSON_BYTES"]:
            raise InvalidUpload(
                problem=Text("the CSV is too large", "CSV 过大"),
                fields={"body": [Text("at most MAX_JSON_BYTES bytes", "不能超过 MAX_JSON_BYTES 字节")]},
            )
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidUpload(
                problem=Text("the CSV must be UTF-8", "CSV 须为 UTF-8 编码"),
                fields={"body": [Text("UTF-8 CSV", "须为 UTF-8 编码的 CSV")]},
            ) from exc
        rows: list[dict[str, Any]] = []
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            if row.get(None):  # type: ignore[call-overload]  # more values than the header names
                raise InvalidUpload(
                    problem=Text(f"line {line} has more values than the header row has columns",
                                 f"第 {line} 行的值比表头的列多（可能有未加引号的逗号）"),
                    fields={f"line {line}": [Text("more values than columns", "值比列多")]},
                )  # fmt: skip
            entry: dict[str, Any] = {k: csv_cells.read((v or "").strip()) for k, v in row.items() if k}
            if "sort" in entry:
                entry["sort"] = (
                    int(entry["sort"]) if re.fullmatch(r"-?[0-9]{1,9}", entry["sort"]) else entry["sort"]
                )
            rows.append(entry)
        return _import({"reference": {name: rows}}, dry_run)


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: csv_cells.written(v) for k, v in row.items()} for row in rows)
    return Response(
        "\ufeff" + out.getvalue(),  # BOM: spreadsheet programs then read the Chinese correctly
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@blp.route("/export")
class Export(MethodView):
    @blp.doc(
        security=BEARER_SECURITY, responses={200: json_answer("an import document (docs/catalog-format.md)")}
    )
    @blp.arguments(ExportQuerySchema, location="query", as_kwargs=True)
    def get(self, published_only: bool) -> Response:
        """The catalog in the import format (newest versions, or only what citizens see)."""
        return jsonify(export_catalog(db.reader(), published_only=published_only))


def _item_row(item: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": item.code,
        "basic_code": item.basic_code,
        "name": doc["name"],
        "status": item.status,
        "published_version": item.published_version,
        "latest_version": item.latest_version,
        "type": doc["type"],
        "department": doc["department"],
        "region": doc["region"],
        "visits": doc["visits"],
        "online_depth": doc["online_depth"],
        "min_level": doc["identity"]["min_level"],
        "burden": burden(doc),
    }


@blp.route("/items")
class Items(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={200: json_answer("every item", object_of(items=array_of(_ITEM_ROW)))},
    )
    @blp.arguments(ItemsQuerySchema, location="query", as_kwargs=True)
    def get(self, status: str | None = None) -> Response:
        """Every item with its status, versions and burden (materials and fields needing no input)."""
        rows = [_item_row(item, doc) for item, doc in list_admin_items(db.reader(), status=status)]
        return jsonify({"items": rows})


@blp.route("/items.csv")
class ItemsCsv(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _CSV})
    def get(self) -> Response:
        """The item list as CSV, with the burden figures."""
        rows = []
        for item, doc in list_admin_items(db.reader()):
            row = _item_row(item, doc)
            rows.append({**row, **row.pop("burden")})
        return _csv(_ITEM_CSV, rows, "items.csv")


@blp.route("/burden")
class Burden(MethodView):
    @blp.doc(
        security=BEARER_SECURITY,
        responses={
            200: json_answer("burden per item and in total", object_of(items=array_of(), total=OBJECT))
        },
    )
    def get(self) -> Response:
        """材料减免率 per published item and over the published catalog."""
        items = list_admin_items(db.reader(), status="published")
        return jsonify(catalog_burden([(item.code, doc) for item, doc in items]))


@blp.route("/items/<string:code>")
class Item(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: json_answer("the item", _ITEM)})
    def get(self, code: str) -> Response:
        """An item: status, newest version's document, every version, burden."""
        item, latest = admin_item(db.reader(), code)
        versions = [
            {
                "version": v.version,
                "state": v.state,
                "created_at": v.created_at.isoformat(),
                "created_by": v.created_by,
                "published_at": v.published_at.isoformat() if v.published_at else None,
                "published_by": v.published_by,
            }
            for v in item_versions(db.reader(), code)
        ]
        return jsonify(
            {**_item_row(item, latest.document), "document": latest.document, "versions": versions}
        )


def _status(item: Any) -> dict[str, Any]:
    return {
        "code": item.code,
        "status": item.status,
        "published_version": getattr(item, "published_version", None),
        "version": getattr(item, "version", None),
    }


@blp.route("/items/<string:code>/publish")
class PublishItem(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _STATUS})
    @idempotent
    def post(self, code: str) -> Response:
        """Publish the newest draft version (the previous published version stays readable)."""
        return jsonify(_status(publish_item(db.session(), current_actor(), code)))


def _change_status(kind: str, code: str, *, suspend: bool, body: dict) -> Response:
    change = set_item_status if kind == "item" else set_bundle_status
    return jsonify(
        _status(change(db.session(), current_actor(), code, suspend=suspend, reason=body["reason"]))
    )


@blp.route("/items/<string:code>/suspend")
class SuspendItem(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _STATUS})
    @blp.arguments(ReasonSchema)
    @idempotent
    def post(self, body: dict, code: str) -> Response:
        """Suspend a published item: hidden from citizens, no new applications."""
        return _change_status("item", code, suspend=True, body=body)


@blp.route("/items/<string:code>/resume")
class ResumeItem(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _STATUS})
    @blp.arguments(ReasonSchema)
    @idempotent
    def post(self, body: dict, code: str) -> Response:
        """Resume a suspended item."""
        return _change_status("item", code, suspend=False, body=body)


@blp.route("/bundles/<string:code>/publish")
class PublishBundle(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _STATUS})
    @idempotent
    def post(self, code: str) -> Response:
        """Publish a bundle's newest content (409 `catalog.bundle_items_unpublished` while any of
        its items is a draft or suspended)."""
        return jsonify(_status(publish_bundle(db.session(), current_actor(), code)))


@blp.route("/bundles/<string:code>/suspend")
class SuspendBundle(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _STATUS})
    @blp.arguments(ReasonSchema)
    @idempotent
    def post(self, body: dict, code: str) -> Response:
        """Suspend a published bundle."""
        return _change_status("bundle", code, suspend=True, body=body)


@blp.route("/bundles/<string:code>/resume")
class ResumeBundle(MethodView):
    @blp.doc(security=BEARER_SECURITY, responses={200: _STATUS})
    @blp.arguments(ReasonSchema)
    @idempotent
    def post(self, body: dict, code: str) -> Response:
        """Resume a suspended bundle (409 `catalog.bundle_items_unpublished` while any of its items
        is suspended or not published)."""
        return _change_status("bundle", code, suspend=False, body=body)
