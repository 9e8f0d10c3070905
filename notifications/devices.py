"""App installations that receive push, and the mini-program's subscribe-message quota."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from domain.accounts import open_guard
from notifications.errors import BadDeviceToken, DeviceNotFound, NoWechatIdentity
from notifications.events import PUSH_PROVIDERS
from notifications.models import (
    CREATED,
    PERMANENT_FAILURE,
    TEMPORARY_FAILURE,
    Device,
    Message,
    WechatSubscription,
)

# What each provider's tokens look like: APNs 32 bytes hex; JPush registration ids; Huawei tokens.
_TOKEN_RULES = {
    "apns": re.compile(r"^[0-9a-fA-F]{64}$"),
    "jpush": re.compile(r"^[0-9a-zA-Z]{8,64}$"),
    "huawei": re.compile(r"^[0-9A-Za-z_\-.:]{32,255}$"),
}
PLATFORMS = {"apns": ("ios",), "jpush": ("android", "ios"), "huawei": ("android", "harmony")}


def register(
    session: Session, account_id: str, *, provider: str, token: str, platform: str, label: str | None
) -> Device:
    """Register (or refresh) a device; a token seen on another account moves to this one."""
    # fullmatch: with match, "$" also accepts a token followed by a newline (a second device).
    if provider not in PUSH_PROVIDERS or not _TOKEN_RULES[provider].fullmatch(token):
        raise BadDeviceToken()
    if platform not in PLATFORMS[provider]:
        raise BadDeviceToken()
    token = token.lower() if provider == "apns" else token
    now = clock.now()
    device = _find_or_add(session, account_id, provider=provider, token=token, platform=platform, now=now)
    if device.account_id != account_id:
        # The phone changed hands or the citizen logged in again: the newest login owns the token,
        # and what was still waiting for the previous owner must not reach this phone.
        _end_open_messages(session, device, now)
    device.account_id = account_id
    device.platform = platform
    device.label = label
    device.last_seen_at = now
    device.disabled_at = None
    device.disabled_reason = None
    session.flush()
    return device


def _find_or_add(
    session: Session, account_id: str, *, provider: str, token: str, platform: str, now: datetime
) -> Device:
    """The device row of this token, added when new.

    The app registers the same new token twice at once (launch and token refresh): the second
    insert meets uq_devices_token, gives its savepoint back and takes the row the first made.
    """
    existing = select(Device).where(Device.provider == provider, Device.token == token)
    device = session.scalar(existing)
    if device is not None:
        return device
    device = Device(provider=provider, token=token, created_at=now, account_id=account_id,
                    platform=platform, last_seen_at=now)  # fmt: skip
    try:
        with session.begin_nested():
            session.add(device)
            session.flush()
    except IntegrityError:
        # The other registration committed the row first (device rows are never deleted).
        device = session.scalar(existing)
        if device is None:
            raise
    return device


def _end_open_messages(session: Session, device: Device, now: datetime) -> None:
    """End the previous owner's messages still waiting for this device (held overnight, due
    later, or to be retried); one being sent is stopped by the sender, which checks the owner."""
    session.execute(
        update(Message)
        .where(
            Message.channel == device.provider,
            Message.target == device.id,
            Message.account_id == device.account_id,
            Message.state.in_((CREATED, TEMPORARY_FAILURE)),
        )
        .values(
            state=PERMANENT_FAILURE,
            error_code="device_moved",
            lease_until=None,
            final_at=now,
            updated_at=now,
            error="the device now belongs to another account",
        ),
        execution_options={"synchronize_session": False},
    )


def remove(session: Session, account_id: str, device_id: str) -> None:
    """Stop pushing to a device of this account (logout, notifications off on the phone); 404
    once the account closed (its lock first: the closure erases its devices)."""
    open_guard.lock_for_change(session, account_id)
    device = session.get(Device, device_id)
    if device is None or device.account_id != account_id or device.disabled_at is not None:
        raise DeviceNotFound()
    device.disabled_at = clock.now()
    device.disabled_reason = "removed"


def list_devices(session: Session, account_id: str) -> list[Device]:
    return list(
        session.scalars(
            select(Device)
            .where(Device.account_id == account_id, Device.disabled_at.is_(None))
            .order_by(Device.created_at)
        )
    )


def record_subscriptions(
    session: Session,
    account_id: str,
    results: Mapping[str, str],
    *,
    has_wechat: bool,
    long_term: frozenset[str],
) -> dict[str, dict]:
    """Apply wx.requestSubscribeMessage's answer ({template_id: accept|reject|ban|filter}).

    "accept" on a one-time template adds one message; on a long-term one, keeps it open.
    "reject" and "ban" close the template (WeChat would answer 43101 anyway).
    404 once the account closed: the insert below is a Core statement the flush guard does not
    see, so the account is locked first (open_guard.lock_for_change).
    """
    open_guard.lock_for_change(session, account_id)
    if not has_wechat:
        raise NoWechatIdentity()
    now = clock.now()
    W = WechatSubscription
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    out: dict[str, dict] = {}
    for template_id, result in results.items():
        # The mini-program reports after each wx.requestSubscribeMessage, often two at once: the
        # row is made if missing (a concurrent first report makes it too) and changed in the
        # database, so no acceptance is lost and neither report fails on the key.
        session.execute(
            insert(W)
            .values(
                account_id=account_id, template_id=template_id, remaining=0, long_term=False, updated_at=now
            )
            .on_conflict_do_nothing(index_elements=[W.account_id, W.template_id])
        )
        change: dict[str, Any] = {"updated_at": now}
        if result == "accept":
            if template_id in long_term:
                change["long_term"] = True
            else:
                change["remaining"] = W.remaining + 1
        elif result in ("reject", "ban"):
            change.update(remaining=0, long_term=False)
        remaining, is_long_term = session.execute(
            update(W)
            .where(W.account_id == account_id, W.template_id == template_id)
            .values(**change)
            .returning(W.remaining, W.long_term),
            execution_options={"synchronize_session": False},
        ).one()
        out[template_id] = {"remaining": remaining, "long_term": is_long_term}
    return out
