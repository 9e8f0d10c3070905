"""Notification settings, read once from the app config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notifications.preferences import QuietHours


def _set(value: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


def send_margin_for(cfg: Mapping[str, Any]) -> float:
    """The longest one send can take: two provider calls (a push provider's token renewed and the
    push sent again, WeChat's access token fetched first), each a connection and an answer
    within the timeout, plus a second. NOTIFY_LEASE must leave room beyond it for sending.

    A send that outlasted the margin could still be running when its lease ran out and another
    sender claimed the message: the citizen would be told twice."""
    timeout = max(float(cfg.get("PROVIDER_TIMEOUT", 5.0)), float(cfg.get("PUSH_TIMEOUT", 5.0)))
    margin = 2 * 2 * timeout + 1
    lease = float(cfg.get("NOTIFY_LEASE", 60.0))
    if lease < 2 * margin:
        raise ValueError(
            f"NOTIFY_LEASE ({lease:g} s) must be at least twice the longest send ({margin:g} s: two "
            "provider calls of PROVIDER_TIMEOUT / PUSH_TIMEOUT each, connection and answer)"
        )
    return margin


@dataclass(frozen=True)
class NotifySettings:
    quiet: QuietHours
    quiet_exempt: frozenset[str]
    sms_fallback_events: frozenset[str]
    sms_fallback_seconds: float
    user_per_hour: int
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    max_age: float
    lease: float
    wechat_appid: str
    wechat_template: str
    wechat_long_term: frozenset[str]
    wechat_page: str
    wechat_state: str
    sms_template: str
    # A send starts only while this much of the lease is left (send_margin_for), so it ends
    # before the message can be claimed again.
    send_margin: float = 5.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> NotifySettings:
        return cls(
            quiet=QuietHours.parse(cfg["NOTIFY_QUIET_HOURS"], cfg["NOTIFY_TIMEZONE"]),
            quiet_exempt=_set(cfg["NOTIFY_QUIET_EXEMPT"]),
            sms_fallback_events=_set(cfg["NOTIFY_SMS_FALLBACK_EVENTS"]),
            sms_fallback_seconds=float(cfg["NOTIFY_SMS_FALLBACK_SECONDS"]),
            user_per_hour=int(cfg["NOTIFY_USER_PER_HOUR"]),
            max_attempts=int(cfg["NOTIFY_MAX_ATTEMPTS"]),
            backoff_base=float(cfg["NOTIFY_BACKOFF_BASE"]),
            backoff_cap=float(cfg["NOTIFY_BACKOFF_CAP"]),
            max_age=float(cfg["NOTIFY_MAX_AGE"]),
            lease=float(cfg["NOTIFY_LEASE"]),
            wechat_appid=cfg["WECHAT_APPID"],
            wechat_template=cfg["NOTIFY_WECHAT_TEMPLATE"],
            wechat_long_term=_set(cfg["NOTIFY_WECHAT_LONG_TERM"]),
            wechat_page=cfg["NOTIFY_WECHAT_PAGE"],
            wechat_state=cfg["NOTIFY_WECHAT_STATE"],
            sms_template=str(cfg["SMS_TEMPLATE_NOTICE"]),
            send_margin=send_margin_for(cfg),
        )
