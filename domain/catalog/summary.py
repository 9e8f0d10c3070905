"""What lists and search need of an item, and the burden figures (材料减免率)."""

from __future__ import annotations

from typing import Any

from domain.catalog.form_schema import leaf_fields
from domain.catalog.search import doc_terms, terms_version


def burden(doc: dict[str, Any]) -> dict[str, Any]:
    """How much of an item a citizen need not type or upload.

    A material counts as satisfied without an upload when an e-certificate type or a shared-data
    dataset can stand in for it; a form field when a prefill binding fills it.
    """
    materials = doc.get("materials") or []
    satisfied = [m["id"] for m in materials if m.get("ecert_types") or m.get("shared_data")]
    form = doc.get("form") or {"schema": {"properties": {}}, "prefill": {}}
    fields = list(leaf_fields(form["schema"]))
    prefilled = [f for f in fields if f in form.get("prefill", {})]

    def rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "materials_total": len(materials),
        "materials_without_upload": len(satisfied),
        "material_reduction_rate": rate(len(satisfied), len(materials)),
        "materials_to_upload": [m["id"] for m in materials if m["id"] not in satisfied],
        "fields_total": len(fields),
        "fields_prefilled": len(prefilled),
        "field_prefill_rate": rate(len(prefilled), len(fields)),
        "overall_rate": rate(len(satisfied) + len(prefilled), len(materials) + len(fields)),
    }


def summarize(doc: dict[str, Any], *, version: int) -> dict[str, Any]:
    """The compact entry lists and search use; small enough to hold thousands in memory."""
    promised = doc["time_limits"]["promised"] or {"value": 0, "unit": "working_day"}
    return {
        "code": doc["code"],
        "basic_code": doc["basic_code"],
        "name": doc["name"],
        "name_en": doc.get("name_en") or "",
        "type": doc["type"],
        "level": doc["level"],
        "region": doc["region"],
        "department": doc["department"],
        "implementing_body": doc["implementing_body"]["name"],
        "categories": doc["categories"],
        "keywords": doc["keywords"],
        "visits": doc["visits"],
        "online_depth": doc["online_depth"],
        "case_type": doc["case_type"],
        "promised_limit": promised,
        "charged": doc["fee"]["charged"],
        "channels": doc["channels"],
        "min_level": doc["identity"]["min_level"],
        "version": version,
        # Search terms cut at import time, so no process has to cut 5,000 names when it loads.
        "terms": doc_terms({"name": [doc["name"]], "keywords": doc["keywords"]}),
        "terms_version": terms_version(),
    }


def catalog_burden(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Burden per item (code, document) and over all of them (材料减免率 of the catalog)."""
    rows = [{"code": code, "name": doc["name"], **burden(doc)} for code, doc in docs]
    materials = sum(r["materials_total"] for r in rows)
    spared = sum(r["materials_without_upload"] for r in rows)
    fields = sum(r["fields_total"] for r in rows)
    prefilled = sum(r["fields_prefilled"] for r in rows)
    return {
        "items": rows,
        "total": {
            "items": len(rows),
            "materials_total": materials,
            "materials_without_upload": spared,
            "material_reduction_rate": round(spared / materials, 4) if materials else None,
            "fields_total": fields,
            "fields_prefilled": prefilled,
            "field_prefill_rate": round(prefilled / fields, 4) if fields else None,
        },
    }
