"""English notices are English throughout: words that events pass as codes (a complaint's kind,
a shared-data answer's status and dataset) are worded in the reader's language, and notices
stored with the Chinese word read in English too."""

from __future__ import annotations

from typing import Any

import pytest

from notifications import events
from tests.notifications.conftest import notify


def _latest(client: Any, person: dict, lang: str) -> dict:
    headers = person["headers"] | {"Accept-Language": lang}
    return client.get("/v1/notifications", headers=headers).get_json()["items"][0]


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


@pytest.mark.parametrize(
    ("params", "zh", "en"),
    [
        ({"kind": "complaint"}, "您的投诉已答复", "Your complaint was answered"),
        ({"kind": "consultation"}, "您的咨询已答复", "Your enquiry was answered"),
        ({"service_name": "投诉"}, "您的投诉已答复", "Your complaint was answered"),  # stored before codes
    ],
)
def test_a_complaint_reply_is_worded_in_each_language(
    app: Any, client: Any, person: dict, params: dict, zh: str, en: str
) -> None:
    notify(app, person, "complaint_replied", case_number="TS20261204000123", **params)
    assert _latest(client, person, "zh")["title"] == zh
    english = _latest(client, person, "en")
    assert english["title"] == en and not _has_cjk(english["body"]), english


def test_a_shared_data_answer_is_worded_in_each_language(app: Any, client: Any, person: dict) -> None:
    notify(
        app, person, "shared_data_unavailable", service_name="Passport",
        dataset="hukou.household_register", dataset_name="户籍信息", status="no_record",
    )  # fmt: skip
    assert "户籍信息无记录" in _latest(client, person, "zh")["body"]
    english = _latest(client, person, "en")
    assert "Household registration record" in english["body"] and "(No record)" in english["body"]
    assert not _has_cjk(english["title"] + english["body"]), english


def test_an_old_shared_data_notice_with_the_chinese_label_reads_in_english() -> None:
    filled = events.values("shared_data_unavailable", {"status_label": "无记录"}, "en")
    assert filled["status_label"] == "No record"
