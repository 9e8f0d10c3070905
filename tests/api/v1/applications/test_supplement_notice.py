"""The message a citizen gets when the department asks for a supplement names what to correct:
the fields by their labels as well as the materials, in the inbox's language; a request for a
field alone is not titled "add materials"."""

from __future__ import annotations

from tests.api.v1.applications.conftest import URL, get, jpeg, stage, upload
from tests.api.v1.applications.test_lifecycle import _submitted


def _supplement_item(app, client, who, lang="zh"):
    from workers.notifier import run

    run(app, threads=1, once=True)
    items = client.get("/v1/notifications", headers=who["headers"] | {"Accept-Language": lang}).get_json()
    (message,) = [i for i in items["items"] if i["event_type"] == "supplement_requested"]
    return message


def _supplement_message(app, client, who, lang="zh"):
    return _supplement_item(app, client, who, lang)["body"]


def test_a_supplement_asking_for_a_field_names_the_field_not_materials(app, client, zhang, officer):
    case = _submitted(client, zhang)
    assert stage(client, officer, case["id"], "received").status_code == 200
    asked = stage(
        client, officer, case["id"], "supplement_requested", note="请改为邮寄", fields=["delivery.method"]
    )
    assert asked.status_code == 200, asked.get_json()
    body = _supplement_message(app, client, zhang)
    assert "领取方式" in body and "相关材料" not in body
    english = _supplement_message(app, client, zhang, "en")
    assert "How to collect" in english and "needs more: materials" not in english
    # Nor is it titled "add materials" in the inbox and the push, though nothing is to be uploaded.
    zh = _supplement_item(app, client, zhang)
    assert "材料" not in zh["title"], zh
    en = _supplement_item(app, client, zhang, "en")
    assert "materials" not in en["title"], en


def test_fields_and_materials_asked_together_are_both_named(app, client, zhang, officer):
    case = _submitted(client, zhang)
    assert stage(client, officer, case["id"], "received").status_code == 200
    asked = stage(
        client, officer, case["id"], "supplement_requested", note="照片不清晰",
        fields=["ss_card_application.bank"], materials=["id_card"],
    )  # fmt: skip
    assert asked.status_code == 200, asked.get_json()
    body = _supplement_message(app, client, zhang)
    assert "居民身份证" in body and "服务银行" in body and "照片不清晰" in body


def test_the_status_of_a_case_asked_to_correct_a_field_does_not_say_materials(client, zhang, officer):
    case = _submitted(client, zhang)
    assert stage(client, officer, case["id"], "received").status_code == 200
    asked = stage(
        client, officer, case["id"], "supplement_requested", note="请改为邮寄", fields=["delivery.method"]
    )
    assert asked.status_code == 200
    detail = get(client, zhang, case["id"]).get_json()
    assert detail["status_label"] == "待补正" and detail["editable_fields"][0] == "delivery.method"
    (item,) = client.get(URL, headers=zhang["headers"]).get_json()["items"]
    assert item["status_label"] == "待补正"


def test_the_timeline_names_what_a_supplement_asked_for(client, zhang, officer):
    case = _submitted(client, zhang)
    assert stage(client, officer, case["id"], "received").status_code == 200
    asked = stage(
        client, officer, case["id"], "supplement_requested", note="照片不清晰",
        fields=["delivery.method"], materials=["id_card"],
    )  # fmt: skip
    assert asked.status_code == 200
    for lang, names in (
        ("zh", ["居民身份证", "领取方式"]),
        ("en", ["Resident identity card", "How to collect"]),
    ):
        events = client.get(
            f"{URL}/{case['id']}/timeline", headers=zhang["headers"] | {"Accept-Language": lang}
        ).get_json()["events"]
        (event,) = [e for e in events if e["status"] == "supplement_requested"]
        assert event["note"] == "照片不清晰"
        assert [a["name"] for a in event["asked"]] == names
        assert [a["kind"] for a in event["asked"]] == ["material", "field"]


def test_a_material_the_supplement_does_not_name_is_refused_with_the_reason(client, zhang, officer):
    case = _submitted(client, zhang)
    assert stage(client, officer, case["id"], "received").status_code == 200
    assert (
        stage(client, officer, case["id"], "supplement_requested", materials=["id_card"]).status_code == 200
    )
    refused = upload(client, zhang, case["id"], "insurance", jpeg())
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "application.material_locked"
    assert refused.get_json()["error"]["message"] == "补正时只能更改部门要求补正的材料"
    assert upload(client, zhang, case["id"], "id_card", jpeg()).status_code == 201
