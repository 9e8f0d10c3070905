"""Reference lists the catalog points at: departments, categories, e-certificate types."""

from __future__ import annotations

from typing import Any

from core.errors import Text
from domain.catalog import codes
from domain.catalog.item_document import SLUG
from domain.catalog.problems import Problems, join
from domain.catalog.reader import Reader

# Department and category codes: two characters at least (docs/catalog-format.md), unlike a
# material's id.
REFERENCE_CODE = SLUG.replace("{0,31}", "{1,31}")

AUDIENCES = ("personal", "legal_person")
LISTS = ("departments", "categories", "ecert_types")


def normalize_reference(problems: Problems, path: str, value: Any) -> dict[str, list[dict[str, Any]]]:
    problems.subject = None
    r = Reader(problems, path, value, set(LISTS))
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in LISTS}
    if not r.ok:
        return out
    for name in LISTS:
        seen: set[str] = set()
        for i, entry in enumerate(r.array(name, required=False, max_items=5000)):
            epath = join(r.at(name), i)
            if name == "departments":
                e = Reader(problems, epath, entry, {"code", "name", "name_en"})
                row = {
                    "code": e.string("code", max_len=32, pattern=REFERENCE_CODE),
                    "name": e.string("name", max_len=100),
                    "name_en": e.string("name_en", required=False, max_len=200, default=""),
                }
            elif name == "categories":
                e = Reader(problems, epath, entry, {"code", "name", "name_en", "audience", "sort"})
                row = {
                    "code": e.string("code", max_len=32, pattern=REFERENCE_CODE),
                    "name": e.string("name", max_len=100),
                    "name_en": e.string("name_en", required=False, max_len=200, default=""),
                    "audience": e.choice("audience", AUDIENCES, required=False, default="personal"),
                    "sort": e.integer("sort", required=False, high=10000, default=0),
                }
            else:
                e = Reader(problems, epath, entry, {"code", "name", "issuer"})
                row = {
                    "code": e.string("code", max_len=21),
                    "name": e.string("name", max_len=100),
                    "issuer": e.string("issuer", required=False, max_len=100, default=""),
                }
                if row["code"] and (problem := codes.ecert_type_problem(row["code"])):
                    problems.add(join(epath, "code"), "invalid_code", problem)
                    continue
            if not e.ok or row["code"] is None or row["name"] is None:
                continue
            if row["code"] in seen:
                problems.add(
                    join(epath, "code"),
                    "duplicate",
                    Text(f"'{row['code']}' listed twice", f"'{row['code']}' 重复列出"),
                )
                continue
            seen.add(row["code"])
            out[name].append(row)
    return out
