"""Messages that waited (held for the quiet hours): at the send they follow what the citizen
did meanwhile, and say when the case changed, not when they went out."""

from __future__ import annotations

from typing import Any

from core.db import db
from tests.notifications.conftest import (
    NIGHT,
    Sim,
    add_wechat,
    apns_token,
    notify,
    register_device,
    run_notifier,
    states,
)


def _save_preferences(person: dict, events: dict) -> None:
    from notifications import preferences

    session = db.session()  # as PUT /v1/me/notification-preferences
    preferences.save(session, person["account_id"], {"events": events})
    session.commit()


def test_a_push_held_overnight_is_not_sent_once_the_citizen_switched_push_off(
    app: Any, client: Any, person: dict, apns: Sim, daytime: Any
) -> None:
    register_device(client, person)
    daytime.advance((NIGHT - daytime.now()).total_seconds())  # 23:00 Beijing
    note = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, note.id) == {"apns": "created"}  # held until 07:00
    daytime.advance(minutes=30)
    _save_preferences(person, {"case_accepted": {"push": False}})
    daytime.advance(hours=8)
    run_notifier(app)
    assert apns.get("notifications") == []
    ended = states(app, note.id)
    assert ended == {"apns": "permanent_failure"} and ended.errors["apns"][0] == "preference"


def test_a_wechat_message_held_overnight_is_not_sent_once_switched_off(
    app: Any, client: Any, person: dict, wechat: Sim, daytime: Any
) -> None:
    openid = _wechat_ready(app, client, wechat, person)
    daytime.advance((NIGHT - daytime.now()).total_seconds())
    note = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "created"}
    _save_preferences(person, {"case_accepted": {"wechat": False}})
    daytime.advance(hours=8)
    run_notifier(app)
    assert wechat.get("messages", touser=openid)["messages"] == []
    assert states(app, note.id) == {"wechat": "permanent_failure"}


def _held_fallback(app: Any, client: Any, person: dict, apns: Sim, daytime: Any) -> Any:
    """A critical notice whose push fails at 21:55 Beijing: its SMS fallback, decided at 22:06,
    is held for the quiet hours."""
    token = apns_token()
    register_device(client, person, token)
    apns.post("unregister", {"token": token})
    daytime.advance(hours=11, minutes=55)  # 21:55 Beijing
    note = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    assert states(app, note.id) == {"apns": "permanent_failure"}
    daytime.advance(minutes=11)  # 22:06: the fallback is decided, and held
    run_notifier(app)
    assert states(app, note.id) == {"apns": "permanent_failure", "sms": "created"}
    return note


def test_a_held_fallback_sms_is_not_sent_once_the_citizen_read_the_notice(
    app: Any, client: Any, person: dict, apns: Sim, sms: Sim, daytime: Any
) -> None:
    note = _held_fallback(app, client, person, apns, daytime)
    daytime.advance(hours=8, minutes=24)  # 06:30: the citizen opens the app and reads it
    from notifications import inbox

    session = db.session()
    inbox.mark_read(session, person["account_id"], note.id)
    session.commit()
    daytime.advance(minutes=30)  # 07:00
    run_notifier(app)
    assert sms.get("messages")["messages"] == []
    ended = states(app, note.id)
    assert ended["sms"] == "permanent_failure" and ended.errors["sms"][0] == "not_needed"


def test_a_held_fallback_sms_still_goes_to_a_citizen_not_reached(
    app: Any, client: Any, person: dict, apns: Sim, sms: Sim, daytime: Any
) -> None:
    note = _held_fallback(app, client, person, apns, daytime)
    daytime.advance(hours=9)  # 07:06, nothing read
    run_notifier(app)
    assert len(sms.get("messages")["messages"]) == 1
    assert states(app, note.id)["sms"] == "sent"


def _wechat_ready(app: Any, client: Any, wechat: Sim, who: dict) -> str:
    openid = add_wechat(app, wechat, who["account_id"])
    wechat.post("subscriptions", {"openid": openid, "template_id": "tpl_application_progress", "count": 1})
    resp = client.post(
        "/v1/miniprogram/subscriptions",
        json={"results": {"tpl_application_progress": "accept"}},
        headers=who["headers"],
    )
    assert resp.status_code == 200
    return openid


def test_a_wechat_message_held_overnight_shows_when_the_case_changed(
    app: Any, client: Any, person: dict, wechat: Sim, daytime: Any
) -> None:
    openid = _wechat_ready(app, client, wechat, person)
    daytime.advance((NIGHT - daytime.now()).total_seconds())  # 23:00 Beijing
    note = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "created"}
    daytime.advance(hours=8)  # 07:00
    run_notifier(app)
    assert states(app, note.id) == {"wechat": "delivered"}
    data = wechat.get("messages", touser=openid)["messages"][0]["data"]
    assert data["time4"]["value"] == "2026-12-04 23:00"  # NIGHT, in Beijing time
