"""The import report's problem details in the response's language: Chinese unless the operator
asks for English; `code` and `path` are the same in both."""

from __future__ import annotations

import copy

from tests.domain.catalog.factories import bundle, document, item, marriage_item
from tests.domain.operators.factories import admin_headers, make_operator

URL = "/admin/v1/catalog/import"

# (path, code) -> (Chinese detail, English detail)
EXPECTED = {
    ("items[0].name", "catalog.required"): ("缺少必填字段 'name'", "'name' is required"),
    ("items[0].colour", "catalog.unknown_field"): (
        "'colour' 不是导入格式中的字段", "'colour' is not part of the format",
    ),
    ("items[0].level", "catalog.invalid"): (
        "须为以下之一：1, 2, 3, 4, 5, 6", "must be one of 1, 2, 3, 4, 5, 6",
    ),
    ("items[0].fee.amount", "catalog.invalid"): (
        "须为正的金额（元），最多 2 位小数", "a positive amount in yuan with at most 2 decimals",
    ),
    ("items[0].basic_code", "catalog.invalid_code"): (
        "须为 10 到 12 位数字或大写字母（GB/T 39046 基本编码）",
        "must be 10 to 12 digits or capital letters (GB/T 39046 basic code)",
    ),
    ("items[0].region", "catalog.invalid_code"): (
        "须为 6 位 GB/T 2260 行政区划代码", "must be a 6-digit GB/T 2260 region code",
    ),
    ("items[0].department", "catalog.unknown_department"): (
        "'tax' 不是已知部门", "'tax' is not a department",
    ),
    ("items[0].materials[0].ecert_types[0]", "catalog.unknown_ecert_type"): (
        "'11100000000019713D777' 不是已知的电子证照类型", "'11100000000019713D777' is not a known type",
    ),
    ("items[0].form.prefill.nobody", "catalog.unknown_form_field"): (
        "'nobody' 不是表单中的字段", "'nobody' is not a field",
    ),
    ("bundles[0].items", "catalog.form_conflict"): (
        "'applicant' 在事项 {a} 与 {b} 中定义不一致", "'applicant' differs between {a} and {b}",
    ),
    ("bundles[1].items[0]", "catalog.unknown_item"): (
        "事项 '{x}' 既不在本次导入中，也不在目录中", "'{x}' is neither imported nor in the catalog",
    ),
}  # fmt: skip


def _broken_document() -> tuple[dict, dict[str, str]]:
    broken = item(basic="000105004000")
    del broken["name"]
    broken["colour"] = "red"
    broken["level"] = 9
    broken["fee"]["amount"] = "-3"
    broken["basic_code"] = "bad"
    broken["region"] = "４４０１００"  # full-width digits
    broken["department"] = "tax"
    broken["materials"][0]["ecert_types"] = ["11100000000019713D777"]
    broken["form"]["prefill"] = {"nobody": "identity.name"}
    a, b = item(basic="000105005000", name="居民身份证补领"), marriage_item()
    clash = copy.deepcopy(b)
    clash["form"]["schema"]["properties"]["applicant"]["properties"]["name"]["maxLength"] = 50
    missing = "X" * 31
    doc = document(
        broken, a, clash, bundles=[bundle([a["code"], b["code"]]), bundle([missing], code="YJS-TWO")]
    )
    return doc, {"a": a["code"], "b": b["code"], "x": missing}


def _problems(resp) -> dict[tuple[str, str], str]:
    body = resp.get_json()
    problems = body["error"]["details"]["problems"] if "error" in body else body["problems"]
    return {(p["path"], p["code"]): p["detail"] for p in problems}


def test_problem_details_are_chinese_by_default_and_english_on_request(app, client):
    headers = admin_headers(client, make_operator(app, username="carol", roles=("catalog_editor",)))
    doc, names = _broken_document()
    zh = client.post(URL, json=doc, headers=headers)
    en = client.post(URL, json=doc, headers=headers | {"Accept-Language": "en"})
    assert zh.status_code == en.status_code == 422, zh.get_json()
    zh_found, en_found = _problems(zh), _problems(en)
    assert zh_found.keys() == en_found.keys()  # the same codes and paths in both languages
    for key, (zh_text, en_text) in EXPECTED.items():
        assert zh_found.get(key) == zh_text.format(**names), (key, zh_found.get(key))
        assert en_found.get(key) == en_text.format(**names), (key, en_found.get(key))
    assert zh.get_json()["error"]["message"] != en.get_json()["error"]["message"]


def test_a_dry_run_report_speaks_the_same_language(app, client):
    headers = admin_headers(client, make_operator(app, username="carol", roles=("catalog_editor",)))
    doc, names = _broken_document()
    report = client.post(f"{URL}?dry_run=true", json=doc, headers=headers)
    assert report.status_code == 200 and report.get_json()["ok"] is False
    found = _problems(report)
    assert found[("items[0].department", "catalog.unknown_department")] == "'tax' 不是已知部门"
    assert found[("bundles[1].items[0]", "catalog.unknown_item")] == EXPECTED[
        ("bundles[1].items[0]", "catalog.unknown_item")
    ][0].format(**names)
    english = client.post(f"{URL}?dry_run=true", json=doc, headers=headers | {"Accept-Language": "en"})
    found = _problems(english)
    assert found[("items[0].department", "catalog.unknown_department")] == "'tax' is not a department"
