"""The rectification reminder on every channel says by when, and in the other rectification
notices' words: an elderly reader of an SMS "即将截止" takes it for their application expiring."""

from __future__ import annotations

from typing import Any

from notifications import templates
from notifications.events import EVENTS
from tests.domain.operators.factories import admin_headers, make_operator

REMINDER = "rectification_decide_reminder"
PARAMS = {"service_name": "社保卡申领", "case_number": "11440100007504956C30001", "decide_by": "2026-12-31"}
URL = "/admin/v1/notification-templates"


def _built_in(channel: str, lang: str = "zh") -> dict[str, Any]:
    return templates.defaults(REMINDER, channel, lang, wechat_template="tpl_application_progress",
                              sms_template="1234567")  # fmt: skip


def test_the_reminder_by_sms_and_wechat_names_the_day() -> None:
    for params, action in ((PARAMS, "确认或申诉"), (PARAMS | {"final": True}, "确认")):
        filled = templates.fill(REMINDER, params)
        sms = templates.sms_params(_built_in("sms"), filled)
        assert "即将截止" not in "".join(sms), sms
        assert any("整改待确认" in p and f"请于2026-12-31前{action}" in p for p in sms), sms
        assert all(len(p) <= templates.LIMITS["sms_param"] for p in sms), sms
        data = templates.wechat_message(_built_in("wechat"), filled)
        assert data["phrase3"]["value"] == "整改待确认", data
        assert data["thing5"]["value"] == f"请于2026-12-31前{action}", data
    final_sms = templates.sms_params(_built_in("sms"), templates.fill(REMINDER, PARAMS | {"final": True}))
    assert "申诉" not in "".join(final_sms), final_sms


def test_the_reminder_titles_fit_and_it_says_confirmed_as_the_other_notices() -> None:
    event = EVENTS[REMINDER]
    assert (
        len(event.title_en) <= templates.LIMITS["title"] and len(event.title_zh) <= templates.LIMITS["title"]
    )
    body = templates.render_text(event.body_zh, templates.fill(REMINDER, PARAMS))
    assert "视为确认" in body and "视为认可" not in body, body


def test_operators_may_use_the_day_to_decide_by_in_their_templates(app: Any, client: Any) -> None:
    editor = admin_headers(client, make_operator(app, username="notice-editor", roles=("catalog_editor",)))
    sms = {"content": {"template_id": "1234567", "params": ["{service_name}", "请于{decide_by}前确认或申诉"]}}
    assert client.put(f"{URL}/{REMINDER}/sms/zh", json=sms, headers=editor).status_code == 200
    inbox = {"content": {"title": "请确认整改结果", "body": "确认截止：{decide_by}。{decide_note}"}}
    assert client.put(f"{URL}/{REMINDER}/inbox/zh", json=inbox, headers=editor).status_code == 200


RESPONDED = "rectification_responded"


def _built_in_responded(channel: str) -> dict[str, Any]:
    return templates.defaults(RESPONDED, channel, "zh", wechat_template="tpl_application_progress",
                              sms_template="1234567")  # fmt: skip


def test_the_response_notice_by_sms_and_wechat_names_the_day_to_decide_by() -> None:
    """An SMS or WeChat message is all many citizens read: "已回复" alone does not tell them that
    their silence confirms the rectification after a date."""
    for params, action in ((PARAMS, "确认或申诉"), (PARAMS | {"final": True}, "确认")):
        filled = templates.fill(RESPONDED, params)
        sms = templates.sms_params(_built_in_responded("sms"), filled)
        assert any("已回复" in p and f"请于2026-12-31前{action}" in p for p in sms), sms
        assert all(len(p) <= templates.LIMITS["sms_param"] for p in sms), sms
        data = templates.wechat_message(_built_in_responded("wechat"), filled)
        assert data["thing5"]["value"] == f"请于2026-12-31前{action}", data
    final_sms = templates.sms_params(
        _built_in_responded("sms"), templates.fill(RESPONDED, PARAMS | {"final": True})
    )
    assert "申诉" not in "".join(final_sms), final_sms


def test_a_response_notice_without_a_day_keeps_the_undated_wording() -> None:
    """A notice stored before periods were kept has no `decide_by`: no "请于前" with a hole in it."""
    undated = {"service_name": "社保卡申领", "case_number": "11440100007504956C30001", "decide_by": None}
    filled = templates.fill(RESPONDED, undated)
    sms = templates.sms_params(_built_in_responded("sms"), filled)
    data = templates.wechat_message(_built_in_responded("wechat"), filled)
    assert "请于" not in "".join(sms) and "请于" not in data["thing5"]["value"], (sms, data)
    assert data["thing5"]["value"] == "请查看整改回复并确认或申诉", data


def test_operators_templates_of_the_response_notice_get_the_day(app: Any, client: Any) -> None:
    """An operator's SMS template written with {note} (the remark) or {decide_by} shows the day."""
    editor = admin_headers(client, make_operator(app, username="notice-editor2", roles=("catalog_editor",)))
    content = {"template_id": "1234567", "params": ["{service_name}", "{phrase}：{note}", "截止{decide_by}"]}
    assert (
        client.put(f"{URL}/{RESPONDED}/sms/zh", json={"content": content}, headers=editor).status_code == 200
    )
    sms = templates.sms_params(content, templates.fill(RESPONDED, PARAMS))
    assert sms[1:] == ["已回复：请于2026-12-31前确认或申诉", "截止2026-12-31"], sms
