"""Who is told what, when: preferences, quiet hours, duplicates and the per-user limit."""

from __future__ import annotations

from typing import Any

from notifications.preferences import QuietHours
from tests.conftest import make_citizen
from tests.notifications.conftest import (
    NIGHT,
    Sim,
    apns_token,
    notify,
    register_device,
    run_notifier,
    states,
    tune,
)


def at_night(app: Any, client: Any, daytime: Any) -> dict:
    """23:00 in Beijing, and a citizen logged in then with an iPhone."""
    daytime.advance((NIGHT - daytime.now()).total_seconds())
    person = make_citizen(app)
    register_device(client, person)
    return person


def test_quiet_hours_hold_push_until_seven_in_the_morning(
    app: Any, client: Any, apns: Sim, daytime: Any
) -> None:
    person = at_night(app, client, daytime)
    note = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, note.id) == {"apns": "created"}
    assert apns.get("notifications") == []
    # The inbox has it at once.
    inbox = client.get("/v1/notifications", headers=person["headers"]).get_json()
    assert [i["id"] for i in inbox["items"]] == [note.id]
    daytime.advance(hours=7, minutes=59)  # 06:59
    run_notifier(app)
    assert apns.get("notifications") == []
    daytime.advance(minutes=1)  # 07:00
    run_notifier(app)
    assert states(app, note.id) == {"apns": "delivered"}
    assert len(apns.get("notifications")) == 1


def test_exempt_events_and_citizens_without_quiet_hours_are_told_at_night(
    app: Any, client: Any, apns: Sim, daytime: Any, monkeypatch: Any
) -> None:
    person = at_night(app, client, daytime)
    tune(app, monkeypatch, quiet_exempt=frozenset({"appointment_reminder"}))
    reminder = notify(app, person, "appointment_reminder", time="08:30", hall="市民中心")
    run_notifier(app)
    assert states(app, reminder.id) == {"apns": "delivered"}
    resp = client.put(
        "/v1/me/notification-preferences", json={"quiet_hours": False}, headers=person["headers"]
    )
    assert resp.status_code == 200 and resp.get_json()["quiet_hours"] is False
    accepted = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, accepted.id) == {"apns": "delivered"}


def test_the_hourly_limit_counts_events_not_the_phones_they_reach(
    app: Any, client: Any, person: dict, apns: Sim, monkeypatch: Any
) -> None:
    """A citizen with three iPhones and a limit of two events an hour: two events reach all
    three phones, the third only the inbox."""
    for _ in range(3):
        register_device(client, person, apns_token())
    tune(app, monkeypatch, user_per_hour=2)
    notes = [notify(app, person, "case_received") for _ in range(3)]
    run_notifier(app)
    from core.db import db
    from notifications.delivery import message_states

    db.session.remove()
    told = [[m["state"] for m in message_states(db.session(), n.id)] for n in notes[:2]]
    assert told == [["delivered"] * 3] * 2, told
    assert len(apns.get("notifications")) == 6
    assert states(app, notes[2].id) == {} and notes[2].skipped["push"] == "rate_limited"


def test_quiet_window_arithmetic() -> None:
    from datetime import UTC, datetime

    quiet = QuietHours.parse("22:00-07:00", "Asia/Shanghai")
    assert quiet.ends_after(datetime(2026, 12, 4, 13, 59, tzinfo=UTC)) is None  # 21:59
    assert quiet.ends_after(datetime(2026, 12, 4, 14, 0, tzinfo=UTC)) == datetime(
        2026, 12, 4, 23, 0, tzinfo=UTC
    )
    assert quiet.ends_after(datetime(2026, 12, 4, 22, 59, tzinfo=UTC)) == datetime(
        2026, 12, 4, 23, 0, tzinfo=UTC
    )
    assert quiet.ends_after(datetime(2026, 12, 4, 23, 0, tzinfo=UTC)) is None  # 07:00
    daytime_window = QuietHours.parse("12:00-14:00", "Asia/Shanghai")
    assert daytime_window.ends_after(datetime(2026, 12, 4, 5, 0, tzinfo=UTC)) == datetime(
        2026, 12, 4, 6, 0, tzinfo=UTC
    )


def test_the_same_event_notifies_once(app: Any, client: Any, person: dict, apns: Sim) -> None:
    register_device(client, person)
    first = notify(app, person, "case_accepted", key="case-1:accepted")
    again = notify(app, person, "case_accepted", key="case-1:accepted")
    assert first is not None and again is None
    run_notifier(app)
    assert len(apns.get("notifications")) == 1
    assert client.get("/v1/notifications", headers=person["headers"]).get_json()["unread_count"] == 1


def test_preferences_switch_channels_per_event(app: Any, client: Any, person: dict, apns: Sim) -> None:
    register_device(client, person)
    body = {"events": {"case_accepted": {"push": False}}, "quiet_hours": True}
    saved = client.put("/v1/me/notification-preferences", json=body, headers=person["headers"]).get_json()
    accepted = next(e for e in saved["events"] if e["event_type"] == "case_accepted")
    assert accepted["channels"] == {"wechat": True, "push": False, "sms": True, "inbox": True}
    quiet = notify(app, person, "case_accepted")
    told = notify(app, person, "case_received")
    run_notifier(app)
    assert states(app, quiet.id) == {} and quiet.skipped["push"] == "preference"
    assert states(app, told.id) == {"apns": "delivered"}
    got = client.get("/v1/me/notification-preferences", headers=person["headers"]).get_json()
    assert next(e for e in got["events"] if e["event_type"] == "case_accepted")["channels"]["push"] is False


def test_bad_preferences_are_refused_whole_with_every_path(client: Any, person: dict) -> None:
    body = {"events": {"no_such_event": {"push": False}, "case_accepted": {"fax": False, "inbox": False}}}
    resp = client.put("/v1/me/notification-preferences", json=body, headers=person["headers"])
    assert resp.status_code == 422
    fields = resp.get_json()["error"]["fields"]
    assert set(fields) == {"events.no_such_event", "events.case_accepted.fax", "events.case_accepted.inbox"}
    en = client.put("/v1/me/notification-preferences", json=body,
                    headers=person["headers"] | {"Accept-Language": "en"})  # fmt: skip
    assert en.get_json()["error"]["fields"]["events.case_accepted.inbox"] == [
        "The inbox cannot be switched off"
    ]
    got = client.get("/v1/me/notification-preferences", headers=person["headers"]).get_json()
    assert all(all(e["channels"].values()) for e in got["events"])  # nothing was written


def test_a_save_without_a_body_is_refused_and_keeps_the_choices(client: Any, person: dict) -> None:
    """A PUT that lost its body (a retry, a proxy) would switch every channel back on: refused."""
    url, headers = "/v1/me/notification-preferences", person["headers"]
    body = {"events": {"case_accepted": {"sms": False}}, "quiet_hours": False}
    assert client.put(url, json=body, headers=headers).status_code == 200
    for extra in ({}, {"Content-Type": "application/json"}):
        resp = client.put(url, headers=headers | extra)
        assert resp.status_code == 422, resp.get_json()
        error = resp.get_json()["error"]
        assert error["code"] == "notifications.bad_preferences"
        assert error["fields"] == {"_schema": ["请提交通知设置"]}
    en = client.put(url, headers=headers | {"Accept-Language": "en"}).get_json()["error"]
    assert en["fields"] == {"_schema": ["Send the preferences as a JSON body"]}
    got = client.get(url, headers=headers).get_json()
    accepted = next(e for e in got["events"] if e["event_type"] == "case_accepted")
    assert accepted["channels"]["sms"] is False and got["quiet_hours"] is False  # nothing was written
    # An empty object still means "everything on" (unlisted = on), as documented.
    reset = client.put(url, json={}, headers=headers).get_json()
    assert all(all(e["channels"].values()) for e in reset["events"]) and reset["quiet_hours"] is True


def test_per_user_rate_limit_keeps_to_the_inbox_but_not_for_critical_events(
    app: Any, client: Any, person: dict, apns: Sim, monkeypatch: Any
) -> None:
    register_device(client, person)
    tune(app, monkeypatch, user_per_hour=3)
    notes = [notify(app, person, "case_received") for _ in range(5)]
    critical = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    told = [states(app, n.id) for n in notes[:3]]
    assert told == [{"apns": "delivered"}] * 3, told  # the message names a failure's error
    assert all(states(app, n.id) == {} and n.skipped["push"] == "rate_limited" for n in notes[3:])
    assert states(app, critical.id) == {"apns": "delivered"}, states(app, critical.id)
    assert client.get("/v1/notifications", headers=person["headers"]).get_json()["unread_count"] == 6


def test_a_long_reason_is_shortened_on_the_lock_screen_but_whole_in_the_inbox(
    app: Any, client: Any, person: dict, apns: Sim
) -> None:
    register_device(client, person)
    reason = "申请材料中的房产证明与不动产登记信息不一致，" * 10  # a department's 220 characters
    note = notify(app, person, "case_refused", reason=reason)
    run_notifier(app)
    assert states(app, note.id) == {"apns": "delivered"}
    body = apns.get("notifications")[0]["payload"]["aps"]["alert"]["body"]
    assert len(body) == 178 and body.endswith("…")
    inbox = client.get("/v1/notifications", headers=person["headers"]).get_json()["items"][0]
    assert reason in inbox["body"]
