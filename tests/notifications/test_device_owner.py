"""A push token registered by another account (the phone changed hands): the device row moves to
the newest login, and what was meant for the previous owner never reaches the phone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from core.db import db
from notifications.models import Device, Message
from tests.conftest import make_citizen
from tests.notifications.conftest import Sim, apns_token, notify, register_device, run_notifier, states


def _pushed_bodies(apns: Sim, token: str) -> list[str]:
    return [p["payload"]["aps"]["alert"]["body"] for p in apns.get("notifications", token=token)]


def _error_code(note_id: str) -> str | None:
    db.session.remove()
    return db.session.query(Message.error_code).filter_by(notification_id=note_id).scalar()


def test_a_held_notice_of_the_previous_owner_ends_when_the_phone_changes_hands(
    app: Any, client: Any, person: dict, apns: Sim, daytime: Any
) -> None:
    token = apns_token()
    register_device(client, person, token)
    daytime.advance(13 * 3600)  # 23:00 in Beijing: the push is held until 07:00
    note = notify(app, person, "case_refused", service_name="居民身份证换领", reason="照片不合格")
    assert states(app, note.id) == {"apns": "created"}
    register_device(client, make_citizen(app), token)  # someone else logs in on the phone
    assert states(app, note.id) == {"apns": "permanent_failure"}
    assert _error_code(note.id) == "device_moved"
    daytime.advance(9 * 3600)  # the next morning
    run_notifier(app)
    assert not any("居民身份证换领" in b for b in _pushed_bodies(apns, token))


def test_the_sender_never_pushes_to_a_device_now_owned_by_another_account(
    app: Any, client: Any, person: dict, apns: Sim
) -> None:
    token = apns_token()
    device = register_device(client, person, token)
    note = notify(app, person, "case_refused", service_name="居民身份证换领", reason="照片不合格")
    # The owner changes after the message was planned and before it is sent (a message being
    # sent or claimed as the token is registered elsewhere): the sender checks the owner.
    other = make_citizen(app)
    session = db.session()
    session.execute(update(Device).where(Device.id == device["id"]).values(account_id=other["account_id"]))
    session.commit()
    run_notifier(app)
    assert _pushed_bodies(apns, token) == []
    assert states(app, note.id) == {"apns": "permanent_failure"}
    assert _error_code(note.id) == "device_moved"
