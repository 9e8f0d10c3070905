"""Life-event bundles (一件事一次办): validation and the merged form.

The merged form asks each top-level group (e.g. `applicant`) once even when several items of
the bundle need it; items may share a group only when they define it identically, otherwise
the citizen would be asked one question with two meanings.
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import Text
from domain.catalog import codes
from domain.catalog.form_schema import DIALECT
from domain.catalog.item_document import References
from domain.catalog.problems import Problems, join
from domain.catalog.reader import Reader

BUNDLE_CODE = r"[A-Z][A-Z0-9-]{3,31}"
BUNDLE_FIELDS = {
    "code",
    "name",
    "name_en",
    "description",
    "region",
    "categories",
    "keywords",
    "items",
    "outcomes",
}


def normalize_bundle(
    problems: Problems, path: str, value: Any, refs: References, known_items: set[str]
) -> dict[str, Any] | None:
    r = Reader(problems, path, value, BUNDLE_FIELDS)
    if not r.ok:
        return None
    problems.subject = value.get("code") if isinstance(value.get("code"), str) else None
    start = len(problems)
    doc: dict[str, Any] = {
        "code": r.string("code", max_len=32, pattern=BUNDLE_CODE),
        "name": r.string("name", max_len=100),
        "name_en": r.string("name_en", required=False, max_len=200, default=""),
        "description": r.string("description", required=False, max_len=2000, multiline=True, default=""),
        "region": r.string("region", max_len=6),
        "categories": r.strings("categories", required=True, min_items=1, max_items=5, max_len=32),
        "keywords": r.strings("keywords", max_items=40, max_len=20),
        "items": r.strings("items", required=True, min_items=2, max_items=20, max_len=31),
        "outcomes": r.strings("outcomes", required=True, min_items=1, max_items=20, max_len=100),
    }
    if doc["region"] and (problem := codes.region_problem(doc["region"])):
        problems.add(r.at("region"), "invalid_code", problem)
    for i, cat in enumerate(doc["categories"]):
        if cat not in refs.categories:
            problems.add(
                join(r.at("categories"), i),
                "unknown_category",
                Text(f"'{cat}' is not a category", f"'{cat}' 不是已知分类"),
            )
    for i, code in enumerate(doc["items"]):
        if code not in known_items:
            problems.add(
                join(r.at("items"), i),
                "unknown_item",
                Text(
                    f"'{code}' is neither imported nor in the catalog",
                    f"事项 '{code}' 既不在本次导入中，也不在目录中",
                ),
            )
    return doc if len(problems) == start else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def form_conflicts(forms: dict[str, dict[str, Any]]) -> list[Text]:
    """Top-level groups (or $defs) that two items of a bundle define differently."""
    seen: dict[str, tuple[str, str]] = {}
    conflicts: list[Text] = []
    for code, form in forms.items():
        schema = form["schema"]
        for kind in ("properties", "$defs"):
            for name, definition in (schema.get(kind) or {}).items():
                key = f"{kind}.{name}"
                canon = _canonical(definition)
                if key in seen and seen[key][1] != canon:
                    first = seen[key][0]
                    conflicts.append(
                        Text(
                            f"'{name}' differs between {first} and {code}",
                            f"'{name}' 在事项 {first} 与 {code} 中定义不一致",
                        )
                    )
                seen.setdefault(key, (code, canon))
    return conflicts


def merge_forms(forms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One form for the bundle: shared groups once, plus which groups each item receives."""
    properties: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    required: list[str] = []
    order: list[str] = []
    fields: dict[str, Any] = {}
    prefill: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for code, form in forms.items():
        schema = form["schema"]
        groups[code] = list(schema["properties"])
        for name, definition in schema["properties"].items():
            properties.setdefault(name, definition)
        for name, definition in (schema.get("$defs") or {}).items():
            defs.setdefault(name, definition)
        for name in schema.get("required") or []:
            if name not in required:
                required.append(name)
        for name in form["ui"]["order"]:
            if name not in order:
                order.append(name)
        for name, hint in form["ui"]["fields"].items():
            fields.setdefault(name, hint)
        for name, source in form["prefill"].items():
            prefill.setdefault(name, source)
    schema_out: dict[str, Any] = {"$schema": DIALECT, "type": "object", "properties": properties}
    if required:
        schema_out["required"] = required
    if defs:
        schema_out["$defs"] = defs
    return {
        "schema": schema_out,
        "ui": {"order": order, "fields": fields},
        "prefill": prefill,
        "groups": groups,
    }
