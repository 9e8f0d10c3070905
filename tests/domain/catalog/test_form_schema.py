"""Form schemas: leaf fields, and validating submitted data against an imported form."""

from __future__ import annotations

from domain.catalog.form_schema import leaf_fields, validate_data
from tests.domain.catalog.factories import item


def test_leaf_fields_follow_groups_and_local_refs():
    schema = {
        "type": "object",
        "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "properties": {"applicant": {"$ref": "#/$defs/person"}, "note": {"type": "string"}},
    }
    assert list(leaf_fields(schema)) == ["applicant.name", "note"]


def test_submitted_data_is_checked_against_the_form():
    schema = item()["form"]["schema"]
    good = {"applicant": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"},
            "reason": {"kind": "expired"}}  # fmt: skip
    assert validate_data(schema, good) == []
    bad = {
        "applicant": {"name": "张", "id_number": "123", "phone": "13800138000"},
        "reason": {"kind": "lost"},
    }
    paths = {p["path"] for p in validate_data(schema, bad)}
    assert paths == {"applicant.name", "applicant.id_number", "reason.kind"}
    assert validate_data(schema, {"applicant": good["applicant"]}) == [
        {"path": "$", "message": "'reason' is a required property"}
    ]
    assert validate_data(schema, "not an object")[0]["path"] == "$"
