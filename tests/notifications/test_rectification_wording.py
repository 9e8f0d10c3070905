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
