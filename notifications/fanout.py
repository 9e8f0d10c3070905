"""Events → notifications: the inbox entry always, and one message per channel the citizen can
receive on, as their preferences, quiet hours, WeChat quota and the per-user limit allow.

The same event (account + dedupe key) notifies once, however often it is reported. Events are
planned in batches: what the plan needs about the citizens (preferences, WeChat identity and
quota, devices, messages in the last hour) is read with one query each for the whole batch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, false, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import constraint_of, take_write_lock
from domain.accounts.models import Account, ChannelIdentity
from domain.accounts.service import WECHAT_OPENID
from domain.applications.models import ApplicationNotice
from notifications import inbox, preferences, templates
from notifications.events import EVENTS, INBOX_ONLY, PREF_CHANNELS, PUSH_PROVIDERS
from notifications.models import (
    CREATED,
    HELD_QUIET,
    Device,
    Message,
    Notification,
    NotificationPreference,
    WechatSubscription,
    ordered_id,
)
from notifications.settings import NotifySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Something to tell one citizen."""

    account_id: str
    event_type: str
    params: dict[str, Any]
    dedupe_key: str
    application_id: str | None = None
    link: str | None = None


@dataclass
class _Facts:
    """What planning needs about the batch's citizens."""

    prefs: dict[str, preferences.Preferences] = field(default_factory=dict)
    wechat: dict[str, str] = field(default_factory=dict)  # account → channel identity id
    quota: set[tuple[str, str]] = field(default_factory=set)  # (account, template) with quota left
    devices: dict[str, list[Device]] = field(default_factory=lambda: defaultdict(list))
    # The per-user limit's count: (account, held for the quiet hours) → events told over WeChat
    # or push in the hour before the message goes out (`since`: when that hour begins; it ends an
    # hour later, now or when the quiet hours end).
    recent: dict[tuple[str, bool], int] = field(default_factory=lambda: defaultdict(int))
    since: dict[bool, datetime] = field(default_factory=dict)
    quiet_end: datetime | None = None  # when messages held now go out
    templates: dict[str, str] = field(default_factory=dict)  # event type → WeChat template id


def notify(
    session: Session,
    settings: NotifySettings,
    *,
    account_id: str,
    event_type: str,
    params: dict[str, Any],
    dedupe_key: str,
    application_id: str | None = None,
    link: str | None = None,
) -> Notification | None:
    """Record one event for the citizen and plan its messages (flushed, not committed).

    Returns None when this event was already notified.
    """
    event = Event(account_id, event_type, params, dedupe_key[:160], application_id, link)
    try:
        with session.begin_nested():
            made = plan(session, settings, [event])
    except IntegrityError as exc:
        # Only the same event, planned by someone else a moment ago, is "already notified"; any
        # other failure must not let the caller commit its change without the citizen's notice.
        if constraint_of(exc) != "uq_notifications_dedupe":
            raise
        log.info("event already notified", extra={"event_type": event_type})
        return None
    return made[0] if made else None


def plan(session: Session, settings: NotifySettings, events: Sequence[Event]) -> list[Notification]:
    """Notifications and their messages for `events` (repeats skipped); flushed, not committed.

    Open apps are told when the transaction commits.
    """
    for event in events:
        if event.event_type not in EVENTS:
            raise ValueError(f"unknown event type {event.event_type!r}")
    now = clock.now()
    # A closed account is told nothing more: its kept cases still move, but nobody reads its inbox.
    closed = set(
        session.scalars(
            select(Account.id).where(
                Account.id.in_({e.account_id for e in events}), Account.closed_at.is_not(None)
            )
        )
    )
    events = [e for e in events if e.account_id not in closed]
    accounts = {e.account_id for e in events}
    seen = _already_notified(session, events)
    facts = _facts(session, settings, accounts, now)
    facts.templates = {t: wechat_template(session, settings, t) for t in {e.event_type for e in events}}
    made: list[Notification] = []
    messages: list[Message] = []
    for event in events:
        key = (event.account_id, event.dedupe_key)
        if key in seen:
            continue
        seen.add(key)
        note = _notification(session, settings, event, now)
        messages += _messages(settings, note, facts, now)
        made.append(note)
    session.add_all(made)
    session.flush()  # notifications before their messages (no ORM relationship orders them)
    session.add_all(messages)
    session.flush()
    for note in made:
        inbox.publish_on_commit(session, note, settings=settings)
    return made


def _already_notified(session: Session, events: Sequence[Event]) -> set[tuple[str, str]]:
    keys = [(e.account_id, e.dedupe_key) for e in events]
    N = Notification
    return set(
        session.execute(
            select(N.account_id, N.dedupe_key).where(tuple_(N.account_id, N.dedupe_key).in_(keys))
        )
    )


def _facts(session: Session, settings: NotifySettings, accounts: set[str], now: datetime) -> _Facts:
    facts = _Facts()
    for row in session.scalars(
        select(NotificationPreference).where(NotificationPreference.account_id.in_(accounts))
    ):
        facts.prefs[row.account_id] = preferences.Preferences(row.channels or {}, row.quiet_hours)
    C = ChannelIdentity
    for account_id, identity_id in session.execute(
        select(C.account_id, C.id).where(
            C.account_id.in_(accounts), C.kind == WECHAT_OPENID, C.issuer == settings.wechat_appid
        )
    ):
        facts.wechat[account_id] = identity_id
    if facts.wechat:
        W = WechatSubscription
        for account_id, template_id in session.execute(
            select(W.account_id, W.template_id).where(
                W.account_id.in_(list(facts.wechat)), (W.long_term.is_(True)) | (W.remaining > 0)
            )
        ):
            facts.quota.add((account_id, template_id))
    for device in session.scalars(
        select(Device)
        .where(Device.account_id.in_(accounts), Device.disabled_at.is_(None))
        .order_by(Device.created_at)
    ):
        facts.devices[device.account_id].append(device)
    # The per-user limit counts events told over WeChat or push, not messages: one event to a
    # citizen's three phones is one interruption, and must not use up three of the hour's. It
    # counts them in the hour they go out: a message held for the quiet hours from when they end
    # (a night of events is not a burst above the limit at 07:00), and one held now in the hour
    # before they end. Each hour is closed at both ends: messages waiting for 07:00 do not use up
    # the night's hour for one that goes out now (an exempt reminder, quiet hours turned off).
    facts.quiet_end = settings.quiet.ends_after(now)
    facts.since[False] = now - timedelta(hours=1)
    if facts.quiet_end is not None:
        facts.since[True] = facts.quiet_end - timedelta(hours=1)
    M = Message
    told_at = case((M.held_reason == HELD_QUIET, M.due_at), else_=M.created_at)
    for held, since in facts.since.items():
        until = since + timedelta(hours=1)
        for account_id, count in session.execute(
            select(M.account_id, func.count(func.distinct(M.notification_id)))
            .where(M.account_id.in_(accounts), told_at > since, told_at <= until, M.channel != "sms")
            .group_by(M.account_id)
        ):
            facts.recent[(account_id, held)] = int(count)
    return facts


def _notification(session: Session, settings: NotifySettings, event: Event, now: datetime) -> Notification:
    content = templates.effective(session, event.event_type, "inbox", "zh", settings=settings)
    filled = templates.fill(event.event_type, event.params, "zh", now)
    return Notification(
        id=ordered_id(), account_id=event.account_id, dedupe_key=event.dedupe_key[:160],
        event_type=event.event_type, critical=event.event_type in settings.sms_fallback_events,
        title=templates.render_text(content["title"], filled)[:64],
        body=templates.render_text(content["body"], filled), params=event.params, link=event.link,
        application_id=event.application_id, created_at=now, skipped={},
    )  # fmt: skip


def _messages(settings: NotifySettings, note: Notification, facts: _Facts, now: datetime) -> list[Message]:
    if note.event_type in INBOX_ONLY:
        note.skipped = {channel: "inbox_only" for channel in PREF_CHANNELS}
        return []
    prefs = facts.prefs.get(note.account_id) or preferences.Preferences({}, True)
    skipped: dict[str, str] = {}
    targets: list[tuple[str, str]] = []  # (channel, target)
    if not prefs.allows(note.event_type, "wechat"):
        skipped["wechat"] = "preference"
    elif note.account_id not in facts.wechat:
        skipped["wechat"] = "no_wechat"
    elif (note.account_id, facts.templates[note.event_type]) not in facts.quota:
        skipped["wechat"] = "no_subscription"
    else:
        targets.append(("wechat", facts.wechat[note.account_id]))
    devices = facts.devices.get(note.account_id, [])
    if not prefs.allows(note.event_type, "push"):
        skipped["push"] = "preference"
    elif not devices:
        skipped["push"] = "no_device"
    else:
        targets += [(d.provider, d.id) for d in devices]
    due, held = now, None
    if prefs.quiet_hours and note.event_type not in settings.quiet_exempt and facts.quiet_end is not None:
        due, held = facts.quiet_end, HELD_QUIET
    told = facts.recent[(note.account_id, held is not None)]
    if targets and not note.critical and told >= settings.user_per_hour:
        skipped |= {
            ("push" if channel in PUSH_PROVIDERS else channel): "rate_limited" for channel, _ in targets
        }
        targets = []
    for window, since in facts.since.items():  # the hour that the message goes out in
        goes_out = since < due <= since + timedelta(hours=1)
        facts.recent[(note.account_id, window)] += 1 if targets and goes_out else 0
    if note.critical:
        if not prefs.allows(note.event_type, "sms"):
            skipped["sms"] = "preference"
        else:
            # SMS only when nothing else delivered in time; at once when there is nothing else.
            wait = timedelta(seconds=settings.sms_fallback_seconds) if targets else timedelta(0)
            note.fallback_due_at = due + wait
    note.skipped = skipped
    return [
        Message(
            notification_id=note.id,
            account_id=note.account_id,
            channel=channel,
            target=target,
            state=CREATED,
            attempts=0,
            due_at=due,
            held_reason=held,
            created_at=now,
            updated_at=now,
        )  # fmt: skip
        for channel, target in targets
    ]


def wechat_template(session: Session, settings: NotifySettings, event_type: str) -> str:
    return str(templates.effective(session, event_type, "wechat", "zh", settings=settings)["template_id"])


def wechat_identity(session: Session, account_id: str, appid: str) -> ChannelIdentity | None:
    return session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.account_id == account_id,
            ChannelIdentity.kind == WECHAT_OPENID,
            ChannelIdentity.issuer == appid,
        )
    )


def process_notices(session: Session, settings: NotifySettings, *, limit: int = 100) -> list[Notification]:
    """Turn pending application notices into notifications; each notice is taken once.

    A batch is claimed in one transaction (rows locked with SKIP LOCKED on PostgreSQL, so
    several notifiers share the work), planned together and committed together, which tells
    open apps. Returns the notifications made.
    """
    N = ApplicationNotice
    stmt = select(N).where(N.processed_at.is_(None)).order_by(N.created_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    else:
        take_write_lock(session, N.__table__, false())  # SQLite: the write lock, no rows touched
    notices = list(session.scalars(stmt))
    if not notices:
        session.rollback()
        return []
    events = [
        Event(
            n.account_id,
            n.event_type,
            dict(n.params or {}),
            f"notice:{n.dedupe_key}"[:160],
            n.application_id,
            f"/v1/applications/{n.application_id}",
        )  # fmt: skip
        for n in notices
    ]
    made = plan(session, settings, events)
    now = clock.now()
    for notice in notices:
        notice.processed_at = now
    session.commit()
    return made
