"""{time} and {date} are Beijing time on every channel: the clock is UTC, the citizen is not."""

from __future__ import annotations

from typing import Any

import pytest

from notifications import templates
from tests.domain.operators.factories import admin_headers, make_operator
from tests.notifications.conftest import Sim, notify, register_device, run_notifier

URL = "/admin/v1/notification-templates"


@pytest.fixture
def editor(app: Any, client: Any) -> dict:
    return admin_headers(client, make_operator(app, username="time-editor", roles=("catalog_editor",)))


def test_the_inbox_says_beijing_time_and_date(
    app: Any, client: Any, editor: dict, person: dict, daytime: Any
) -> None:
    body = {"content": {"title": "申请已受理", "body": "您的申请已于 {time} 受理（{date}）。"}}
    assert client.put(f"{URL}/case_accepted/inbox/zh", json=body, headers=editor).status_code == 200
    note = notify(app, person, "case_accepted")  # 02:00 UTC
    assert note.body == "您的申请已于 2026-12-04 10:00 受理（2026-12-04）。"
    daytime.advance(14.5 * 3600)  # 16:30 UTC on the 4th: 00:30 on the 5th in Beijing
    assert notify(app, person, "case_accepted").body == "您的申请已于 2026-12-05 00:30 受理（2026-12-05）。"


def test_a_push_says_beijing_time(app: Any, client: Any, editor: dict, person: dict, apns: Sim) -> None:
    body = {"content": {"title": "申请已受理", "body": "受理时间 {time}"}}
    assert client.put(f"{URL}/case_accepted/push/zh", json=body, headers=editor).status_code == 200
    register_device(client, person)
    notify(app, person, "case_accepted")
    run_notifier(app)
    assert apns.get("notifications")[0]["payload"]["aps"]["alert"]["body"] == "受理时间 2026-12-04 10:00"


def test_sms_variables_say_the_beijing_date(daytime: Any) -> None:
    daytime.advance(14.5 * 3600)  # 00:30 on the 5th in Beijing, still the 4th in UTC
    filled = templates.fill("case_accepted", {"service_name": "居民身份证换领", "case_number": "YW1"}, "zh")
    assert templates.sms_params({"params": ["{date}", "{time}"]}, filled) == [
        "2026-12-05",
        "2026-12-05 00:30",
    ]
