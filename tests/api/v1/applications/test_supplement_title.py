"""a supplement asking to correct a field alone is titled 请补充材料 / "Please add
materials" in the inbox (and the push/SMS title), though nothing is to be uploaded: the same
wrong steer the body (相关材料) and the status label (待补正材料) were fixed for."""

from __future__ import annotations

from tests.api.v1.applications.conftest import stage
from tests.api.v1.applications.test_lifecycle import _submitted


def _supplement_item(app, client, who, lang="zh"):
    from workers.notifier import run

    run(app, threads=1, once=True)
    items = client.get("/v1/notifications", headers=who["headers"] | {"Accept-Language": lang}).get_json()
    (message,) = [i for i in items["items"] if i["event_type"] == "supplement_requested"]
    return message


def test_a_field_only_supplement_is_not_titled_add_materials(app, client, zhang, officer):
    case = _submitted(client, zhang)
    assert stage(client, officer, case["id"], "received").status_code == 200
    asked = stage(
        client, officer, case["id"], "supplement_requested", note="请改为邮寄", fields=["delivery.method"]
    )
    assert asked.status_code == 200, asked.get_json()
    zh = _supplement_item(app, client, zhang)
    assert "材料" not in zh["title"], zh
    en = _supplement_item(app, client, zhang, "en")
    assert "materials" not in en["title"], en
