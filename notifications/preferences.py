"""A citizen's notification choices, and the quiet hours that hold push and SMS until morning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.db import take_write_lock
from core.errors import Text
from domain.accounts.models import Account
from notifications.errors import BadPreferences
from notifications.events import EVENTS, PREF_CHANNELS
from notifications.models import NotificationPreference


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    tz: ZoneInfo

    @classmethod
    def parse(cls, window: str, tz: str) -> QuietHours:
        """From "22:00-07:00" and a zone name."""
        start, _, end = window.partition("-")
        return cls(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), ZoneInfo(tz))

    def ends_after(self, at: datetime) -> datetime | None:
        """When the quiet period `at` falls in ends (UTC), or None when `at` is not quiet."""
        local = at.astimezone(self.tz)
        t = local.time()
        overnight = self.start > self.end
        quiet = (t >= self.start or t < self.end) if overnight else (self.start <= t < self.end)
        if not quiet:
            return None
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(at.tzinfo)


@dataclass(frozen=True)
class Preferences:
    channels: Mapping[str, Mapping[str, bool]]
    quiet_hours: bool

    def allows(self, event_type: str, channel: str) -> bool:
        return bool(self.channels.get(event_type, {}).get(channel, True))


def load(session: Session, account_id: str) -> Preferences:
    row = session.get(NotificationPreference, account_id)
    if row is None:
        return Preferences({}, True)
    return Preferences(row.channels or {}, row.quiet_hours)


def view(prefs: Preferences, *, critical: set[str], lang: str = "zh") -> dict[str, Any]:
    """Every event with every channel's setting, for GET."""
    return {
        "quiet_hours": prefs.quiet_hours,
        "events": [
            {
                "event_type": name,
                "label": event.label_en if lang == "en" else event.label_zh,
                "sms_fallback": name in critical,
                "channels": {ch: prefs.allows(name, ch) for ch in PREF_CHANNELS} | {"inbox": True},
            }
            for name, event in EVENTS.items()
        ],
    }


def save(session: Session, account_id: str, body: Mapping[str, Any]) -> Preferences:
    """Replace the choices with `body` ({events: {type: {channel: bool}}, quiet_hours: bool}).

    Every problem is reported at once, with its path; nothing is written when there is one.
    Written at the caller's commit; the account stays locked until then.
    """
    fields: dict[str, list[str]] = {}
    events = body.get("events", {})
    if not isinstance(events, Mapping):
        fields["events"] = [Text("Must be an object of event types", "应为按事项类型的对象")]
        events = {}
    chosen: dict[str, dict[str, bool]] = {}
    for name, channels in events.items():
        if name not in EVENTS:
            fields[f"events.{name}"] = [Text("Unknown event type", "没有这种通知类型")]
            continue
        if not isinstance(channels, Mapping):
            fields[f"events.{name}"] = [Text("Must be an object of channels", "应为按渠道的对象")]
            continue
        for channel, on in channels.items():
            if channel == "inbox":
                if on is not True:
                    fields[f"events.{name}.inbox"] = [
                        Text("The inbox cannot be switched off", "站内消息不能关闭")
                    ]
                continue
            if channel not in PREF_CHANNELS:
                fields[f"events.{name}.{channel}"] = [Text("Unknown channel", "没有这种通知渠道")]
            elif not isinstance(on, bool):
                fields[f"events.{name}.{channel}"] = [Text("Must be true or false", "应为 true 或 false")]
            elif not on:
                chosen.setdefault(name, {})[channel] = False
    quiet = body.get("quiet_hours", True)
    if not isinstance(quiet, bool):
        fields["quiet_hours"] = [Text("Must be true or false", "应为 true 或 false")]
    if fields:
        raise BadPreferences(fields=fields)
    # The account is locked first: of two saves at once (the first one especially, when both
    # would insert the row) the second waits, then finds the first one's row and replaces it.
    # FOR NO KEY UPDATE: rows that merely reference the account are still written meanwhile.
    take_write_lock(session, Account.__table__, Account.id == account_id)  # SQLite: see core.db
    session.execute(select(Account.id).where(Account.id == account_id).with_for_update(key_share=True))
    row = session.get(NotificationPreference, account_id, populate_existing=True)
    if row is None:
        row = NotificationPreference(account_id=account_id)
        session.add(row)
    row.channels = chosen
    row.quiet_hours = bool(quiet)
    row.updated_at = clock.now()
    return Preferences(chosen, bool(quiet))
