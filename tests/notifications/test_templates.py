"""Operators manage the wording per event × channel × language; the channel's limits are checked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain.operators.factories import admin_headers, make_operator
from tests.notifications.conftest import Sim, add_wechat, notify, register_device, run_notifier, states

URL = "/admin/v1/notification-templates"


@pytest.fixture
def editor(app: Any, client: Any) -> dict:
    return admin_headers(client, make_operator(app, username="notice-editor", roles=("catalog_editor",)))


def test_an_edited_inbox_and_push_wording_is_used_and_can_be_reverted(
    app: Any, client: Any, editor: dict, person: dict, apns: Sim
) -> None:
    register_device(client, person)
    body = {
        "content": {"title": "已受理：{service_name}", "body": "受理编号 {case_number}，请耐心等待办理结果。"}
    }
    resp = client.put(f"{URL}/case_accepted/inbox/zh", json=body, headers=editor)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["overridden"] is True and resp.get_json()["version"] == 1
    note = notify(app, person, "case_accepted", service_name="居民身份证换领")
    run_notifier(app)
    assert note.title == "已受理：居民身份证换领"
    assert apns.get("notifications")[0]["payload"]["aps"]["alert"]["title"] == "已受理：居民身份证换领"
    assert client.delete(f"{URL}/case_accepted/inbox/zh", headers=editor).status_code == 204
    assert notify(app, person, "case_accepted").title == "申请已受理"
    assert client.delete(f"{URL}/case_accepted/inbox/zh", headers=editor).status_code == 404


def test_templates_are_checked_against_the_channel_limits_when_saved(client: Any, editor: dict) -> None:
    too_long = {"content": {"title": "{service_name}{service_name}", "body": "x"}}
    resp = client.put(f"{URL}/case_accepted/inbox/zh", json=too_long, headers=editor)
    assert resp.status_code == 422 and "content.title" in resp.get_json()["error"]["fields"]
    bad_wechat = {
        "content": {
            "template_id": "tpl_application_progress",
            "fields": {
                "phrase3": "您的申请已经受理",
                "thing1": "{service_name}",
                "time4": "明天",
                "character_string2": "{no_such_value}",
            },
        }
    }
    fields = client.put(f"{URL}/case_accepted/wechat/zh", json=bad_wechat, headers=editor).get_json()[
        "error"
    ]["fields"]
    assert set(fields) == {
        "content.fields.phrase3",
        "content.fields.time4",
        "content.fields.character_string2",
    }
    sms = {"content": {"template_id": "not-digits", "params": ["{service_name}", "{0.__class__}"]}}
    fields = client.put(f"{URL}/case_refused/sms/zh", json=sms, headers=editor).get_json()["error"]["fields"]
    assert set(fields) == {"content.template_id", "content.params.1"}
    unknown = client.put(f"{URL}/no_event/fax/fr", json={"content": {}}, headers=editor)
    assert set(unknown.get_json()["error"]["fields"]) == {"event_type", "channel", "lang"}
    # A key the channel does not use (a typo, or another channel's) is named, not dropped.
    stray = {"content": {"title": "已受理", "body": "请等待", "bdoy": "请耐心等待", "template_id": "123"}}
    resp = client.put(f"{URL}/case_accepted/inbox/zh", json=stray, headers=editor)
    assert resp.status_code == 422, resp.get_json()
    assert set(resp.get_json()["error"]["fields"]) == {"content.bdoy", "content.template_id"}


def test_an_edited_wechat_template_is_sent_fitted(
    app: Any, client: Any, editor: dict, person: dict, wechat: Sim
) -> None:
    openid = add_wechat(app, wechat, person["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": "tpl_materials_required", "count": 1})
    client.post(
        "/v1/miniprogram/subscriptions",
        json={"results": {"tpl_materials_required": "accept"}},
        headers=person["headers"],
    )
    content = {
        "template_id": "tpl_materials_required",
        "fields": {"thing1": "{service_name}", "thing2": "请补充{materials}", "date3": "{date}"},
    }
    assert (
        client.put(
            f"{URL}/supplement_requested/wechat/zh", json={"content": content}, headers=editor
        ).status_code
        == 200
    )
    note = notify(app, person, "supplement_requested", materials=[{"name": "户口簿首页"}, {"name": "结婚证"}])
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "delivered"}
    data = wechat.get("messages", touser=openid)["messages"][0]["data"]
    assert data["thing2"]["value"] == "请补充户口簿首页、结婚证" and data["date3"]["value"] == "2026-12-04"


def test_templates_need_the_editor_role(app: Any, client: Any) -> None:
    ops = admin_headers(client, make_operator(app, username="ops-only", roles=("ops",)))
    assert client.get(URL, headers=ops).status_code == 403
    assert client.get(URL).status_code == 401


def test_listing_shows_every_event_and_channel(client: Any, editor: dict) -> None:
    rows = client.get(URL, headers=editor).get_json()
    keys = {(r["event_type"], r["channel"], r["lang"]) for r in rows}
    assert ("case_completed", "sms", "zh") in keys and ("case_completed", "inbox", "en") in keys
    assert all(not r["overridden"] for r in rows)


@pytest.mark.parametrize(
    ("channel", "content"),
    [
        (
            "wechat",
            {"template_id": "tpl_application_progress", "fields": {"character_string2": "{case_number}"}},
        ),
        ("sms", {"template_id": "100002", "params": ["{case_number}"]}),
    ],
)
def test_wechat_and_sms_have_no_english_template_to_save(
    client: Any, editor: dict, channel: str, content: dict
) -> None:
    from core.db import db
    from notifications.models import NotificationTemplate

    resp = client.put(f"{URL}/case_accepted/{channel}/en", json={"content": content}, headers=editor)
    assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
    error = resp.get_json()["error"]
    assert error["code"] == "notifications.bad_template" and set(error["fields"]) == {"lang"}
    assert "只发送中文" in str(error["fields"]["lang"])
    english = client.put(
        f"{URL}/case_accepted/{channel}/en",
        json={"content": content},
        headers=editor | {"Accept-Language": "en"},
    )
    assert "Chinese only" in str(english.get_json()["error"]["fields"]["lang"])
    db.session.remove()
    assert db.session.query(NotificationTemplate).filter_by(channel=channel).count() == 0
    # The listing shows the channel in Chinese only, as it is sent.
    listed = client.get(URL, headers=editor).get_json()
    assert {r["lang"] for r in listed if r["channel"] == channel} == {"zh"}


def test_the_listing_shows_the_push_wording_that_is_sent(
    app: Any, client: Any, editor: dict, person: dict, apns: Sim
) -> None:
    def push_row() -> dict:
        rows = client.get(URL, headers=editor).get_json()
        key = ("case_accepted", "push", "zh")
        return next(r for r in rows if (r["event_type"], r["channel"], r["lang"]) == key)

    assert push_row()["source"] == "built_in"
    body = {"content": {"title": "已受理：{service_name}", "body": "受理编号 {case_number}。"}}
    assert client.put(f"{URL}/case_accepted/inbox/zh", json=body, headers=editor).status_code == 200
    register_device(client, person)
    notify(app, person, "case_accepted", service_name="居民身份证换领")
    run_notifier(app)
    sent = apns.get("notifications")[0]["payload"]["aps"]["alert"]["title"]
    assert sent == "已受理：居民身份证换领"
    listed = push_row()
    # What the lock screen shows, and that it is the inbox's override (push has none of its own).
    assert listed["content"]["title"] == "已受理：{service_name}"
    assert listed["source"] == "inbox" and listed["overridden"] is False
    own = {"content": {"title": "受理通知", "body": "{service_name} 已受理。"}}
    assert client.put(f"{URL}/case_accepted/push/zh", json=own, headers=editor).status_code == 200
    assert push_row()["source"] == "own" and push_row()["content"]["title"] == "受理通知"


@pytest.mark.parametrize(
    "page",
    [{"a": 1}, "p" * 100_000, 42, "", "/pages/applications/detail", "pages/case/detail?id={application_id}",
     "pages/applications/detail?id=1", "pages/../detail", "https://example.com/pages/x"],
)  # fmt: skip
def test_a_wechat_page_that_is_not_a_mini_program_page_is_refused(
    client: Any, editor: dict, page: Any
) -> None:
    from core.db import db
    from notifications.models import NotificationTemplate

    content = {"template_id": "T1", "fields": {"thing1": "{service_name}"}, "page": page}
    resp = client.put(f"{URL}/case_received/wechat/zh", json={"content": content}, headers=editor)
    assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
    error = resp.get_json()["error"]
    assert error["code"] == "notifications.bad_template" and set(error["fields"]) == {"content.page"}
    assert "小程序页面路径" in str(error["fields"]) or "申请的 id" in str(error["fields"])
    english = client.put(
        f"{URL}/case_received/wechat/zh",
        json={"content": content},
        headers=editor | {"Accept-Language": "en"},
    )
    assert "page" in str(english.get_json()["error"]["fields"]["content.page"])
    db.session.remove()
    assert db.session.query(NotificationTemplate).filter_by(channel="wechat").count() == 0


def test_a_wechat_page_is_sent_with_the_application_id_added(
    app: Any, client: Any, editor: dict, person: dict, wechat: Sim
) -> None:
    from core.db import db
    from notifications import fanout, templates
    from notifications.models import NotificationTemplate

    openid = add_wechat(app, wechat, person["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": "tpl_application_progress", "count": 2})
    for _ in range(2):  # one message per acceptance
        client.post(
            "/v1/miniprogram/subscriptions",
            json={"results": {"tpl_application_progress": "accept"}},
            headers=person["headers"],
        )
    fields = {
        "thing1": "{service_name}", "character_string2": "{case_number}", "phrase3": "{phrase}",
        "time4": "{time}", "thing5": "{note}",
    }  # fmt: skip
    for page in ("pages/applications/list", "pages/applications/detail?from=notice"):
        content = {"template_id": "tpl_application_progress", "fields": fields, "page": page}
        resp = client.put(f"{URL}/case_received/wechat/zh", json={"content": content}, headers=editor)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["content"]["page"] == page
    settings = app.extensions["yiwang"].notifications.settings

    def send(application_id: str) -> str:
        note = fanout.notify(
            db.session(), settings, account_id=person["account_id"], event_type="case_received",
            params={"service_name": "居民身份证换领", "case_number": "YW202612040001"},
            dedupe_key=application_id, application_id=application_id,
        )  # fmt: skip
        db.session.commit()
        note_id = note.id
        run_notifier(app)
        assert states(app, note_id) == {"wechat": "delivered"}
        return wechat.get("messages", touser=openid)["messages"][-1]["page"]

    assert send("app-123") == "pages/applications/detail?from=notice&id=app-123"
    # A page saved before pages were checked is not sent as written: the configured page is.
    row = db.session.query(NotificationTemplate).filter_by(event_type="case_received", channel="wechat").one()
    row.content = {**row.content, "page": {"a": 1}}
    db.session.commit()
    templates.forget_cache()
    assert send("app-124") == "pages/applications/detail?id=app-124"


def test_template_ids_and_texts_with_nothing_visible_are_refused_and_ids_are_stored_trimmed(
    client: Any, editor: dict
) -> None:
    fields = {"thing1": "{service_name}"}
    for blank in (" ", "\u3000", "\u202e\u200b"):
        wechat = {"content": {"template_id": blank, "fields": fields}}
        resp = client.put(f"{URL}/case_received/wechat/zh", json=wechat, headers=editor)
        assert resp.status_code == 422, resp.get_json()
        assert set(resp.get_json()["error"]["fields"]) == {"content.template_id"}
        inbox = {"content": {"title": blank, "body": "受理编号 {case_number}"}}
        resp = client.put(f"{URL}/case_received/inbox/zh", json=inbox, headers=editor)
        assert resp.status_code == 422, resp.get_json()
        assert set(resp.get_json()["error"]["fields"]) == {"content.title"}
    sms = {
        "content": {"template_id": "\u0661\u0662\u0663", "params": ["{case_number}"]}
    }  # Arabic-Indic digits
    resp = client.put(f"{URL}/case_refused/sms/zh", json=sms, headers=editor)
    assert resp.status_code == 422 and set(resp.get_json()["error"]["fields"]) == {"content.template_id"}
    wechat = {"content": {"template_id": " tpl_application_progress\n", "fields": fields}}
    saved = client.put(f"{URL}/case_received/wechat/zh", json=wechat, headers=editor)
    assert (
        saved.status_code == 200 and saved.get_json()["content"]["template_id"] == "tpl_application_progress"
    )
    sms = {"content": {"template_id": " 100002 ", "params": ["{case_number}"]}}
    saved = client.put(f"{URL}/case_refused/sms/zh", json=sms, headers=editor)
    assert saved.status_code == 200 and saved.get_json()["content"]["template_id"] == "100002"
