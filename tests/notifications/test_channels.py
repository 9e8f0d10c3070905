"""Every channel end to end against its simulator: WeChat quota, APNs tokens, SMS fallback."""

from __future__ import annotations

from typing import Any

from core.db import db
from notifications.models import Device, WechatSubscription
from tests.notifications.conftest import (
    Sim,
    add_wechat,
    apns_token,
    notify,
    register_device,
    run_notifier,
    states,
)

TEMPLATE = "tpl_application_progress"


def subscribe(client: Any, who: dict, result: str = "accept", template: str = TEMPLATE) -> dict:
    resp = client.post(
        "/v1/miniprogram/subscriptions", json={"results": {template: result}}, headers=who["headers"]
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["templates"][template]


def test_wechat_message_spends_one_time_quota_and_renders_within_field_limits(
    app: Any, client: Any, person: dict, wechat: Sim
) -> None:
    openid = add_wechat(app, wechat, person["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": TEMPLATE, "count": 1})
    assert subscribe(client, person) == {"remaining": 1, "long_term": False}
    long_name = "城乡居民基本养老保险参保登记及待遇领取资格认证（含异地）"
    note = notify(
        app,
        person,
        "case_refused",
        service_name=long_name,
        reason="申请人不属于本统筹区参保范围，请向户籍所在地申请",
    )
    run_notifier(app)

    assert states(app, note.id) == {"wechat": "delivered"}
    sent = wechat.get("messages", touser=openid)["messages"]
    assert len(sent) == 1
    data = sent[0]["data"]
    assert len(data["thing1"]["value"]) == 20 and data["thing1"]["value"].endswith("…")
    assert data["phrase3"]["value"] == "不予受理"
    assert data["character_string2"]["value"] == "YW202612040001"
    assert len(data["thing5"]["value"]) <= 20
    # The one acceptance is spent: the next event has no WeChat message at all.
    db.session.remove()
    assert db.session.get(WechatSubscription, (person["account_id"], TEMPLATE)).remaining == 0
    second = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, second.id) == {}
    assert second.skipped["wechat"] == "no_subscription"
    assert len(wechat.get("messages", touser=openid)["messages"]) == 1


def test_an_appointment_reminder_without_a_case_number_reaches_wechat(
    app: Any, client: Any, person: dict, wechat: Sim
) -> None:
    """Reminders (and notices about drafts) have no case number: the keyword that shows it gets
    "-", since WeChat refuses an empty value and with it the whole message."""
    openid = add_wechat(app, wechat, person["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": TEMPLATE, "count": 1})
    subscribe(client, person)
    note = notify(
        app, person, "appointment_reminder", case_number=None, time="2026-12-08 09:30", hall="市民中心"
    )
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "delivered"}, states(app, note.id)
    data = wechat.get("messages", touser=openid)["messages"][0]["data"]
    assert data["character_string2"]["value"] == "-" and data["thing1"]["value"]


def test_wechat_43101_closes_the_template_and_fails_permanently(
    app: Any, client: Any, person: dict, wechat: Sim
) -> None:
    add_wechat(app, wechat, person["account_id"])  # WeChat itself has no acceptance on record
    subscribe(client, person)
    note = notify(app, person)
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "permanent_failure"}
    db.session.remove()
    assert db.session.get(WechatSubscription, (person["account_id"], TEMPLATE)).remaining == 0


def test_wechat_47003_is_a_permanent_failure_and_keeps_the_quota(
    app: Any, client: Any, person: dict, wechat: Sim
) -> None:
    openid = add_wechat(app, wechat, person["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": TEMPLATE, "count": 2})
    subscribe(client, person)
    subscribe(client, person)
    wechat.post("faults", {"endpoint": "cgi-bin/message/subscribe/send", "errcode": 47003, "times": 1})
    note = notify(app, person)
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "permanent_failure"}
    db.session.remove()
    # WeChat did not take the message, so the citizen's acceptance is still there.
    assert db.session.get(WechatSubscription, (person["account_id"], TEMPLATE)).remaining == 2


def test_wechat_quota_comes_back_after_an_unclassified_failure(
    app: Any, client: Any, person: dict, wechat: Sim, daytime: Any, monkeypatch: Any
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    openid = add_wechat(app, wechat, person["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": TEMPLATE, "count": 1})
    subscribe(client, person)
    wx = app.extensions["yiwang"].notifications.wechat
    real_token = wx._current_token
    calls: list[int] = []

    def blip_once() -> Any:  # the shared access token's Redis answers with an error, once
        calls.append(1)
        if len(calls) == 1:
            raise RedisConnectionError("redis blip")
        return real_token()

    monkeypatch.setattr(wx, "_current_token", blip_once)
    note = notify(app, person)
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "temporary_failure"}
    db.session.remove()
    assert db.session.get(WechatSubscription, (person["account_id"], TEMPLATE)).remaining == 1
    daytime.advance(60)
    run_notifier(app)  # the retry still has the acceptance to spend
    assert states(app, note.id) == {"wechat": "delivered"}
    assert len(wechat.get("messages", touser=openid)["messages"]) == 1


def test_subscriptions_need_a_wechat_identity(client: Any, person: dict) -> None:
    resp = client.post(
        "/v1/miniprogram/subscriptions", json={"results": {TEMPLATE: "accept"}}, headers=person["headers"]
    )
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "notifications.no_wechat_identity"
    bad = client.post(
        "/v1/miniprogram/subscriptions", json={"results": {TEMPLATE: "maybe"}}, headers=person["headers"]
    )
    assert bad.status_code == 422


def test_apns_push_reaches_the_device_over_http2(app: Any, client: Any, person: dict, apns: Sim) -> None:
    device = register_device(client, person)
    token = db.session.get(Device, device["id"]).token
    note = notify(app, person, "supplement_requested", materials=[{"name": "户口簿首页"}], reason="请补充")
    run_notifier(app)
    assert states(app, note.id) == {"apns": "delivered"}
    pushed = apns.get("notifications", token=token)
    assert len(pushed) == 1
    assert pushed[0]["payload"]["aps"]["alert"]["title"] == "请补正申请"
    assert "户口簿首页" in pushed[0]["payload"]["aps"]["alert"]["body"]
    assert pushed[0]["topic"] == app.config["APNS_TOPIC"]


def test_apns_410_disables_the_device_and_later_events_skip_it(
    app: Any, client: Any, person: dict, apns: Sim
) -> None:
    token = apns_token()
    device = register_device(client, person, token)
    apns.post("unregister", {"token": token})
    note = notify(app, person)
    run_notifier(app)
    assert states(app, note.id) == {"apns": "permanent_failure"}
    db.session.remove()
    row = db.session.get(Device, device["id"])
    assert row.disabled_at is not None and row.disabled_reason == "unregistered"
    later = notify(app, person)
    assert later.skipped["push"] == "no_device"
    # Registering the token again (the app reinstalled) brings the device back.
    register_device(client, person, token)
    assert client.get("/v1/devices", headers=person["headers"]).get_json()[0]["id"] == device["id"]


def test_apns_5xx_retries_with_backoff_until_delivered(
    app: Any, client: Any, person: dict, apns: Sim, daytime: Any
) -> None:
    register_device(client, person)
    apns.post("faults", {"status": 503, "reason": "ServiceUnavailable", "times": 2})
    note = notify(app, person)
    run_notifier(app)
    assert states(app, note.id) == {"apns": "temporary_failure"}
    for _ in range(3):
        daytime.advance(60)
        run_notifier(app)
    assert states(app, note.id) == {"apns": "delivered"}


def test_retries_end_in_technical_failure(
    app: Any, client: Any, person: dict, apns: Sim, daytime: Any
) -> None:
    register_device(client, person)
    apns.post("faults", {"status": 500, "reason": "InternalServerError", "times": 50})
    note = notify(app, person)
    for _ in range(app.config["NOTIFY_MAX_ATTEMPTS"] + 1):
        run_notifier(app)
        daytime.advance(app.config["NOTIFY_BACKOFF_CAP"])
    assert states(app, note.id) == {"apns": "technical_failure"}


def test_device_registration_rejects_bad_tokens_and_checks_ownership(
    app: Any, client: Any, person: dict
) -> None:
    from tests.conftest import make_citizen

    body = {"provider": "apns", "token": "zz-not-hex-token", "platform": "ios"}
    bad = client.post("/v1/devices", json=body, headers=person["headers"])
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "devices.bad_token"
    device = register_device(client, person)
    other = make_citizen(app)
    assert client.delete(f"/v1/devices/{device['id']}", headers=other["headers"]).status_code == 404
    assert client.delete(f"/v1/devices/{device['id']}", headers=person["headers"]).status_code == 204
    assert client.get("/v1/devices", headers=person["headers"]).get_json() == []


def test_sms_fallback_when_no_other_channel_delivers(
    app: Any, client: Any, person: dict, apns: Sim, sms: Sim, daytime: Any
) -> None:
    token = apns_token()
    register_device(client, person, token)
    apns.post("unregister", {"token": token})  # push will fail
    note = notify(app, person, "case_completed", result="approved")
    run_notifier(app)
    assert states(app, note.id) == {"apns": "permanent_failure"}
    assert sms.get("messages")["messages"] == []  # the fallback waits first
    daytime.advance(app.config["NOTIFY_SMS_FALLBACK_SECONDS"] + 1)
    run_notifier(app)
    assert states(app, note.id) == {"apns": "permanent_failure", "sms": "sent"}
    texts = sms.get("messages")["messages"]
    assert len(texts) == 1 and "已办结" in texts[0]["content"]


def test_an_sms_held_back_by_the_per_number_limit_is_sent_once_it_lifts(
    app: Any, client: Any, person: dict, sms: Sim, daytime: Any
) -> None:
    """A citizen whose only channel is SMS, two critical events at once: the provider takes one
    message per number per 30 s; the second is retried after it, not dropped."""
    completed = notify(app, person, "case_completed", result="approved")
    refused = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    told = sorted([states(app, completed.id), states(app, refused.id)], key=lambda s: s["sms"])
    assert [s["sms"] for s in told] == ["sent", "temporary_failure"], told
    assert told[1].errors["sms"][0] == "LimitExceeded.PhoneNumberThirtySecondLimit"
    for _ in range(4):  # the backoff passes and the provider's window with it
        daytime.advance(60)
        sms.post("advance", {"seconds": 60})
        run_notifier(app)
    assert states(app, completed.id) == {"sms": "sent"} and states(app, refused.id) == {"sms": "sent"}
    assert len(sms.get("messages")["messages"]) == 2


def _sms_off(app: Any, who: dict, event_type: str) -> None:
    """The citizen switches SMS off for `event_type` (as PUT /v1/me/notification-preferences does)."""
    from notifications import preferences

    session = db.session()
    preferences.save(session, who["account_id"], {"events": {event_type: {"sms": False}}})
    session.commit()


def _skipped(note_id: str) -> dict:
    from notifications.models import Notification

    db.session.remove()
    note = db.session().get(Notification, note_id)
    return {"skipped": note.skipped, "fallback": note.fallback_outcome}


def test_no_fallback_sms_when_the_citizen_switched_sms_off_after_the_event(
    app: Any, client: Any, person: dict, apns: Sim, sms: Sim, daytime: Any
) -> None:
    token = apns_token()
    register_device(client, person, token)
    apns.post("unregister", {"token": token})  # push will fail
    note = notify(app, person, "case_completed", result="approved")
    run_notifier(app)
    assert states(app, note.id) == {"apns": "permanent_failure"}
    put = client.put(
        "/v1/me/notification-preferences",
        json={"events": {"case_completed": {"sms": False}}},
        headers=person["headers"],
    )
    assert put.status_code == 200, put.get_json()
    daytime.advance(app.config["NOTIFY_SMS_FALLBACK_SECONDS"] + 1)
    run_notifier(app)
    assert sms.get("messages")["messages"] == []
    assert states(app, note.id) == {"apns": "permanent_failure"}
    skipped = _skipped(note.id)
    assert skipped["skipped"]["sms"] == "preference" and skipped["fallback"] == "preference"


def test_a_held_fallback_sms_is_not_sent_once_the_citizen_switched_sms_off(
    app: Any, client: Any, person: dict, apns: Sim, sms: Sim, daytime: Any
) -> None:
    token = apns_token()
    register_device(client, person, token)
    apns.post("unregister", {"token": token})  # push will fail
    note = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    daytime.advance(hours=13)  # 23:00 in Beijing: the fallback is decided and held for the night
    run_notifier(app)
    db.session.remove()
    assert states(app, note.id) == {"apns": "permanent_failure", "sms": "created"}
    _sms_off(app, person, "case_refused")  # before the morning
    daytime.advance(hours=9)
    run_notifier(app)
    assert sms.get("messages")["messages"] == []
    assert states(app, note.id) == {"apns": "permanent_failure", "sms": "permanent_failure"}
    from notifications.delivery import message_states

    sms_row = next(m for m in message_states(db.session(), note.id) if m["channel"] == "sms")
    assert sms_row["error_code"] == "preference"
    assert _skipped(note.id)["skipped"]["sms"] == "preference"


def test_no_sms_when_push_delivered_or_the_inbox_was_read(
    app: Any, client: Any, person: dict, apns: Sim, sms: Sim, daytime: Any
) -> None:
    register_device(client, person)
    delivered = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    daytime.advance(app.config["NOTIFY_SMS_FALLBACK_SECONDS"] + 1)
    run_notifier(app)
    assert states(app, delivered.id) == {"apns": "delivered"}
    assert sms.get("messages")["messages"] == []
    # Without any channel the SMS goes at once, unless the citizen already read it in the app.
    client.delete(f"/v1/devices/{client.get('/v1/devices', headers=person['headers']).get_json()[0]['id']}",
                  headers=person["headers"])  # fmt: skip
    read_first = notify(app, person, "case_refused", reason="材料不齐")
    assert (
        client.post(f"/v1/notifications/{read_first.id}/read", headers=person["headers"]).status_code == 200
    )
    run_notifier(app)
    assert sms.get("messages")["messages"] == []
    unread = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    assert states(app, unread.id) == {"sms": "sent"}
    assert len(sms.get("messages")["messages"]) == 1


def test_sms_fallback_only_for_critical_events(app: Any, person: dict, sms: Sim, daytime: Any) -> None:
    note = notify(app, person, "case_accepted")
    daytime.advance(app.config["NOTIFY_SMS_FALLBACK_SECONDS"] + 1)
    run_notifier(app)
    assert states(app, note.id) == {}
    assert sms.get("messages")["messages"] == []


def test_the_sms_preference_note_survives_a_later_message_of_the_batch_failing(
    app: Any, client: Any, sms: Sim, daytime: Any
) -> None:
    """Two citizens switch SMS off while their fallback SMS waits for the morning; the sender
    takes both in one batch and the second send fails unexpectedly (the sender rolls back and
    retries it later). The first citizen's notification still says why no SMS came."""
    from notifications.delivery import Sender
    from tests.conftest import make_citizen

    people = [make_citizen(app), make_citizen(app)]
    notes = {p["account_id"]: notify(app, p, "case_refused", reason="材料不齐") for p in people}
    daytime.advance(hours=13)  # 23:00 in Beijing: no other channel, the SMS is held for the night
    run_notifier(app)
    for p in people:
        assert states(app, notes[p["account_id"]].id) == {"sms": "created"}
        _sms_off(app, p, "case_refused")
    daytime.advance(hours=9)

    deps = app.extensions["yiwang"].notifications
    real = deps.sender().channels["sms"]
    calls: list[str] = []

    class FailingSecond:
        """The real SMS channel, except that its second send fails as a bug would."""

        def send(self, session: Any, message: Any, note: Any) -> Any:
            calls.append(note.id)
            if len(calls) == 2:
                raise RuntimeError("unexpected")
            return real.send(session, message, note)

    sender = Sender(deps.settings, {"sms": FailingSecond()})
    claimed = sender.claim(db.session(), 10)
    assert len(claimed) == 2
    sender.deliver_batch(db.session(), claimed)
    assert len(calls) == 2 and sms.get("messages")["messages"] == []
    first, second = calls
    assert states(app, first) == {"sms": "permanent_failure"}
    assert _skipped(first)["skipped"]["sms"] == "preference"  # not lost with the rollback
    assert states(app, second) == {"sms": "temporary_failure"}  # retried later; it will say so then


def _failing_second(real: Any, calls: list[str]) -> Any:
    """A channel that is `real` except that its second send of a batch fails as a bug would."""

    class FailingSecond:
        def send(self, session: Any, message: Any, note: Any) -> Any:
            calls.append(message.id)
            if len(calls) == 2:
                raise RuntimeError("unexpected")
            return real.send(session, message, note)

    return FailingSecond()


def test_a_device_apns_unregistered_stays_disabled_when_a_later_message_of_the_batch_fails(
    app: Any, client: Any, person: dict, apns: Sim
) -> None:
    """The first send of a batch gets 410 Unregistered (the device is disabled); the next one
    fails unexpectedly and the sender rolls back before recording: the device stays disabled."""
    from notifications.delivery import Sender

    token = apns_token()
    device = register_device(client, person, token)
    apns.post("unregister", {"token": token})
    first, second = notify(app, person), notify(app, person, "case_received")
    deps = app.extensions["yiwang"].notifications
    calls: list[str] = []
    sender = Sender(deps.settings, {"apns": _failing_second(deps.sender().channels["apns"], calls)})
    claimed = sender.claim(db.session(), 10)
    assert len(claimed) == 2
    sender.deliver_batch(db.session(), claimed)
    assert len(calls) == 2
    db.session.remove()
    row = db.session.get(Device, device["id"])
    assert row.disabled_at is not None and row.disabled_reason == "unregistered"  # not lost
    assert sorted([*states(app, first.id).values(), *states(app, second.id).values()]) == [
        "permanent_failure",
        "temporary_failure",
    ]
    later = notify(app, person)
    assert later.skipped["push"] == "no_device"


def test_a_wechat_template_closed_by_43101_stays_closed_when_a_later_message_of_the_batch_fails(
    app: Any, client: Any, person: dict, wechat: Sim
) -> None:
    """WeChat answers 43101 to the first send of a batch (the template's quota is cleared); the
    next send fails unexpectedly and the sender rolls back: the quota stays cleared."""
    from notifications.delivery import Sender

    add_wechat(app, wechat, person["account_id"])  # WeChat itself has no acceptance on record
    subscribe(client, person)
    subscribe(client, person)
    first, second = notify(app, person), notify(app, person, "case_received")
    assert states(app, first.id) == {"wechat": "created"} and states(app, second.id) == {"wechat": "created"}
    deps = app.extensions["yiwang"].notifications
    calls: list[str] = []
    sender = Sender(deps.settings, {"wechat": _failing_second(deps.sender().channels["wechat"], calls)})
    claimed = sender.claim(db.session(), 10)
    assert len(claimed) == 2
    sender.deliver_batch(db.session(), claimed)
    assert len(calls) == 2
    assert sorted([*states(app, first.id).values(), *states(app, second.id).values()]) == [
        "permanent_failure",
        "temporary_failure",
    ]
    db.session.remove()
    assert db.session.get(WechatSubscription, (person["account_id"], TEMPLATE)).remaining == 0  # not 1
