"""App installations that receive push, and the mini-program's subscribe-message quota."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from notifications.errors import BadDeviceToken, DeviceNotFound, NoWechatIdentity
from notifications.events import PUSH_PROVIDERS
from notifications.models import Device, WechatSubscription

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
    if provider not in PUSH_PROVIDERS or not _TOKEN_RULES[provider].match(token):
        raise BadDeviceToken()
    if platform not in PLATFORMS[provider]:
        raise BadDeviceToken()
    token = token.lower() if provider == "apns" else token
    now = clock.now()
    device = session.scalar(select(Device).where(Device.provider == provider, Device.token == token))
    if device is None:
        device = Device(
            provider=provider, token=token, created_at=now, account_id=account_id, platform=platform
        )
        session.add(device)
    # The phone changed hands or the citizen logged in again: the newest login owns the token.
    device.account_id = account_id
    device.platform = platform
    device.label = label
    device.last_seen_at = now
    device.disabled_at = None
    device.disabled_reason = None
    session.flush()
    return device


def remove(session: Session, account_id: str, device_id: str) -> None:
    """Stop pushing to a device of this account (logout, notifications off on the phone)."""
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
    """
    if not has_wechat:
        raise NoWechatIdentity()
    now = clock.now()
    out: dict[str, dict] = {}
    for template_id, result in results.items():
        row = session.get(WechatSubscription, (account_id, template_id))
        if row is None:
            row = WechatSubscription(account_id=account_id, template_id=template_id, remaining=0,
                                     long_term=False, updated_at=now)  # fmt: skip
            session.add(row)
        if result == "accept":
            if template_id in long_term:
                row.long_term = True
            else:
                row.remaining = (row.remaining or 0) + 1
        elif result in ("reject", "ban"):
            row.remaining, row.long_term = 0, False
        row.updated_at = now
        out[template_id] = {"remaining": row.remaining, "long_term": row.long_term}
    session.flush()
    return out
