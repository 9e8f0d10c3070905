"""Form schemas: leaf fields, and validating submitted data against an imported form."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from domain.catalog.form_schema import leaf_fields, validate_data
from domain.catalog.importing import import_catalog
from domain.catalog.models import ServiceItem
from domain.operators.audit_log import Actor
from tests.domain.catalog.factories import document, item
from tests.domain.operators.factories import admin_headers, make_operator

ACTOR = Actor(type="operator", id="op-1")


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


# --- text inside the form schema: the same rule as the catalog's own text -------------------

KIND = "items[0].form.schema.properties.reason.properties.kind"


def _kind(doc: dict) -> dict:
    return doc["form"]["schema"]["properties"]["reason"]["properties"]["kind"]


def _set_title(doc, value):
    _kind(doc)["title"] = value


def _rename_kind(doc, name):
    reason = doc["form"]["schema"]["properties"]["reason"]
    reason["properties"] = {name if k == "kind" else k: v for k, v in reason["properties"].items()}
    reason["required"] = [name]
    doc["form"]["ui"]["order"].remove("reason.kind")
    del doc["form"]["ui"]["fields"]["reason.kind"]


BAD_TEXT = [
    (lambda d: _set_title(d, "标\x00题"), f"{KIND}.title"),
    (lambda d: _set_title(d, "标\n题"), f"{KIND}.title"),  # a title is one line
    (lambda d: _set_title(d, "标\x1b[31m题"), f"{KIND}.title"),
    (lambda d: _kind(d).update(description="说\x00明"), f"{KIND}.description"),
    (lambda d: _kind(d).update(description="说\x7f明"), f"{KIND}.description"),
    (lambda d: _kind(d).update(pattern="^a\x00$"), f"{KIND}.pattern"),
    (lambda d: _kind(d).update(enum=["expired", "dam\x00aged"]), f"{KIND}.enum[1]"),
    (lambda d: _kind(d).update(default="exp\x08ired"), f"{KIND}.default"),
    (lambda d: _kind(d).update(examples=["ok", {"k\x00": "v"}]), f"{KIND}.examples[1].k\\u0000"),
    (lambda d: _kind(d).update({"x-note\x00": "v"}), f"{KIND}.x-note\\u0000"),
    (
        lambda d: d["form"]["schema"]["properties"]["reason"].update(required=["kind", "pick\x00up"]),
        "items[0].form.schema.properties.reason.required[1]",
    ),
    (
        lambda d: _rename_kind(d, "ki\x00nd"),
        "items[0].form.schema.properties.reason.properties.ki\\u0000nd",
    ),
    (
        lambda d: _rename_kind(d, "ki\tnd"),
        "items[0].form.schema.properties.reason.properties.ki\\u0009nd",
    ),
    (
        lambda d: _rename_kind(d, "k" * 65),
        "items[0].form.schema.properties.reason.properties." + "k" * 64 + "…",
    ),
    (
        lambda d: _rename_kind(d, "k" * 20_000),
        "items[0].form.schema.properties.reason.properties." + "k" * 64 + "…",
    ),
    (lambda d: _rename_kind(d, " "), "items[0].form.schema.properties.reason.properties. "),
    (  # "reason.ki.nd" would name property nd of ki in every field path
        lambda d: _rename_kind(d, "ki.nd"),
        "items[0].form.schema.properties.reason.properties.ki.nd",
    ),
]


@pytest.mark.parametrize(("spoil", "path"), BAD_TEXT)
def test_control_characters_and_overlong_names_in_a_form_schema_are_refused(db_session, spoil, path):
    doc = item()
    spoil(doc)
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    assert (path, "invalid_form_schema") in {(p.path, p.code) for p in report.problems}, report.problems


def test_a_form_schema_refused_for_its_text_is_a_422_over_http_and_nothing_is_stored(app, client, db_session):
    doc = item()
    _set_title(doc, "标\x00题")
    _rename_kind(doc, "k" * 100_000)  # past the schema's size limit too: refused either way
    other = item()
    _kind(other)["description"] = "说\x00明"
    headers = admin_headers(client, make_operator(app, username="carol", roles=("catalog_editor",)))
    for bad in (doc, other):
        resp = client.post("/admin/v1/catalog/import", json=document(bad, publish=True), headers=headers)
        assert resp.status_code == 422, resp.get_json()
        error = resp.get_json()["error"]
        assert error["code"] == "catalog.import_invalid"
        assert all(p["path"].startswith("items[0].form.schema") for p in error["details"]["problems"])
        assert all(len(p["path"]) < 300 for p in error["details"]["problems"])
    assert db_session.scalar(select(func.count()).select_from(ServiceItem)) == 0


def test_multiline_descriptions_tabs_and_64_character_names_are_accepted(db_session):
    doc = item()
    _kind(doc).update(title="换领\t原因", description="第一行\n第二行\t（说明）")
    _rename_kind(doc, "k" * 64)
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    assert report.ok, report.problems


def test_many_bad_strings_give_a_short_report(db_session):
    doc = item()
    _kind(doc)["enum"] = [f"v{i}\x00" for i in range(500)]
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    enum_problems = [p for p in report.problems if p.path.startswith(f"{KIND}.enum[")]
    assert len(enum_problems) == 20 and len(report.problems) <= 25, report.problems


def test_a_schema_the_meta_schema_refuses_is_explained_in_chinese_and_english(db_session):
    doc = item()
    _kind(doc)["type"] = "strin"  # a typo of "string"
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    [problem] = [p for p in report.problems if p.code == "invalid_form_schema"]
    assert problem.path == f"{KIND}.type"
    zh, en = problem.as_dict("zh"), problem.as_dict("en")
    assert zh["message"] == "表单 JSON Schema 无效"
    assert zh["detail"].startswith("不是有效的 JSON Schema 2020-12：此处违反元模式的“anyOf”规则")
    assert "'strin' is not valid" in zh["detail"]  # the library's own words, as the technical detail
    assert en["detail"].startswith("'strin' is not valid") and "JSON Schema 2020-12" not in en["detail"]


# --- patterns: read by the phone as ECMA-262, so Python-only syntax is refused ----------------


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"^(?P<region>\d{6})\d{11}[\dX]$", "(?P…)"),  # a phone cannot compile Python's named group
        (r"\A\d{6}\Z", r"\A"),  # a plain "A" and "Z" in ECMA-262: no ID number would pass there
        (r"(?i)^[a-z]{2}\d+$", "(?i)"),
        (r"^\d++$", "++"),
        (r"^[^]]+$", "[^]"),  # any character, then "]"s, on the phone
    ],
)
def test_a_pattern_a_phone_reads_otherwise_is_refused_naming_what(db_session, pattern, construct):
    doc = item()
    _kind(doc)["pattern"] = pattern
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    [problem] = [p for p in report.problems if p.code == "invalid_form_schema"]
    assert problem.path == f"{KIND}.pattern"
    assert construct in problem.as_dict("zh")["detail"] and "ECMA-262" in problem.as_dict("en")["detail"]


def test_patterns_both_sides_read_alike_are_accepted_and_data_is_not_mistaken_for_one(db_session):
    doc = item()
    _kind(doc).update(pattern=r"^(?:[\u4e00-\u9fa5·]{2,20}|[A-Z]{2}\d+?)$", examples=[{"pattern": "(?P<x>)"}])
    doc["form"]["schema"]["properties"]["reason"]["properties"]["pattern"] = {
        "type": "string",
        "pattern": r"^\d{6}$",
    }
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    assert report.ok, report.problems


def test_a_required_name_the_form_does_not_have_is_refused_at_import(db_session):
    """A typo in `required` ("reasons" for the group "reason") imported cleanly, and then every
    submission was refused for a field no phone shows."""
    doc = copy.deepcopy(item())  # the factory's forms are shared between its items
    doc["form"]["schema"]["required"] = ["applicant", "reasons"]
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    found = {(p.path, p.code) for p in report.problems}
    assert ("items[0].form.schema.required[1]", "invalid_form_schema") in found, report.problems
    nested = copy.deepcopy(item())
    applicant = nested["form"]["schema"]["properties"]["applicant"]
    applicant["required"] = [*applicant.get("required", []), "adress"]
    report = import_catalog(db_session, ACTOR, document(nested), dry_run=True)
    assert any(
        p.path.startswith("items[0].form.schema.properties.applicant.required[") for p in report.problems
    ), report.problems
    assert import_catalog(db_session, ACTOR, document(item()), dry_run=True).ok  # the factory's own form


def test_labels_of_a_yes_no_choice_are_keyed_as_a_phone_writes_the_values():
    from domain.catalog.form_schema import normalize_form
    from domain.catalog.problems import Problems
    from tests.domain.catalog.factories import DIALECT

    def form(labels: dict) -> dict:
        agree = {"type": "boolean", "enum": [True, False]}
        return {
            "schema": {"$schema": DIALECT, "type": "object", "properties": {
                "consent": {"type": "object", "properties": {"agree": agree}}}},
            "ui": {"fields": {"consent.agree": {"widget": "switch", "enum_labels": labels}}},
        }  # fmt: skip

    problems = Problems()
    labels = {"true": {"zh": "同意", "en": "Yes"}, "false": {"zh": "不同意", "en": "No"}}
    normalized = normalize_form(problems, "items[0].form", form(labels))
    assert [(p.path, p.detail.zh) for p in problems.found] == []
    assert set(normalized["ui"]["fields"]["consent.agree"]["enum_labels"]) == {"true", "false"}
    python_keys = Problems()
    normalize_form(python_keys, "items[0].form", form({"True": {"zh": "同意", "en": "Yes"}}))
    assert [p.code for p in python_keys.found] == ["unknown_form_field"]
