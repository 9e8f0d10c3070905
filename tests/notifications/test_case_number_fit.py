"""The default case number is 43 characters (31-character item code, date, serial), longer than
a WeChat character_string (32) or an SMS variable (35): the citizen still sees the part that
tells their cases apart, the date and serial at the end."""

from __future__ import annotations

from typing import Any

from notifications import templates
from tests.notifications.conftest import Sim, add_wechat, notify, run_notifier, states

TEMPLATE = "tpl_application_progress"
CODE = "11440100007504956C" + "2" + "000123456789"  # USCC + level + basic code: 31 characters
FIRST = CODE + "20261204" + "0001"
SECOND = CODE + "20261204" + "0002"


def test_wechat_shows_two_cases_of_one_service_with_different_numbers(
    app: Any, client: Any, person: dict, wechat: Sim
) -> None:
    openid = add_wechat(app, wechat, person["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": TEMPLATE, "count": 2})
    for _ in range(2):
        resp = client.post(
            "/v1/miniprogram/subscriptions", json={"results": {TEMPLATE: "accept"}}, headers=person["headers"]
        )
        assert resp.status_code == 200
    notify(app, person, "case_accepted", case_number=FIRST)
    notify(app, person, "case_accepted", case_number=SECOND)
    run_notifier(app)
    shown = [
        m["data"]["character_string2"]["value"] for m in wechat.get("messages", touser=openid)["messages"]
    ]
    assert sorted(shown) == [FIRST[-32:], SECOND[-32:]]  # two sending threads: either order


def test_the_sms_keeps_the_end_of_the_case_number_within_the_variable_limit(
    app: Any, person: dict, sms: Sim
) -> None:
    note = notify(app, person, "case_refused", case_number=FIRST, reason="材料不齐")
    run_notifier(app)  # no other channel: SMS at once
    assert states(app, note.id) == {"sms": "sent"}
    [sent] = sms.get("messages")["messages"]
    assert sent["params"][1] == FIRST[-35:]
    assert "202612040001" in sent["content"]


def test_text_around_the_case_number_is_kept() -> None:
    filled = {"case_number": FIRST, "service_name": "居民身份证换领"}
    [param] = templates.sms_params({"params": ["编号{case_number}"]}, filled)
    assert param == "编号" + FIRST[-33:] and len(param) == 35
