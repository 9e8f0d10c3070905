"""Admin errors: Chinese by default (message and field messages), English on Accept-Language: en."""

from __future__ import annotations

import re

from tests.domain.operators.factories import admin_headers, make_operator

EN = {"Accept-Language": "en"}
HAN = re.compile(r"[\u4e00-\u9fff]")


def _texts(err):
    return [err["message"], *[m for ms in (err.get("fields") or {}).values() for m in ms]]


def test_admin_error_texts_follow_the_language(app, client):
    h = admin_headers(client, make_operator(app, roles=("admin", "catalog_editor")))
    cases = {
        "weak password": (
            "post",
            "/admin/v1/operators",
            {"json": {"username": "bob", "display_name": "B", "password": "short", "roles": ["auditor"]}},
        ),
        "empty patch": ("patch", f"/admin/v1/operators/{'0' * 8}-0000-0000-0000-{'0' * 12}", {"json": {}}),
        "csv wrong type": (
            "post",
            "/admin/v1/catalog/reference/departments.csv",
            {"data": "code,name\n", "content_type": "text/plain"},
        ),
        "csv unknown list": ("get", "/admin/v1/catalog/reference/nope.csv", {}),
    }
    bad = []
    for name, (method, url, kw) in cases.items():
        zh = getattr(client, method)(url, headers=h, **kw).get_json()["error"]
        en = getattr(client, method)(url, headers=h | EN, **kw).get_json()["error"]
        zh_english = [t for t in _texts(zh) if not HAN.search(t)]
        en_chinese = [t for t in _texts(en) if HAN.search(t)]
        if zh_english or en_chinese:
            bad.append(f"{name}: zh response has English {zh_english}; en response has Chinese {en_chinese}")
    assert not bad, "\n" + "\n".join(bad)
