"""Events → notifications: the inbox entry always, and one message per channel the citizen can
receive on, as their preferences, quiet hours, WeChat quota and the per-user limit allow.

The same event (account + dedupe key) notifies once, however often it is reported.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import take_write_lock
from domain.accounts.models import ChannelIdentity
from domain.accounts.service import WECHAT_OPENID
from domain.applications.models import ApplicationNotice
from notifications import inbox, preferences, templates
from notifications.events import EVENTS, PUSH_PROVIDERS
from notifications.models import CREATED, Device, Message, Notification, WechatSubscription
from notifications.settings import NotifySettings

log = logging.getLogger(__name__)


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
    """Record the event for the citizen and plan its messages (flushed, not committed).

    Returns None when this event was already notified.
    """
    if event_type not in EVENTS:
        raise ValueError(f"unknown event type {event_type!r}")
    now = clock.now()
    content = templates.effective(session, event_type, "inbox", "zh", settings=settings)
    filled = templates.fill(event_type, params, "zh", now)
    title = templates.render_text(content["title"], filled)[:64]
    body = templates.render_text(content["body"], filled)
    critical = event_type in settings.sms_fallback_events
    note = Notification(
        account_id=account_id, dedupe_key=dedupe_key[:160], event_type=event_type, critical=critical,
        title=title, body=body, params=params, link=link, application_id=application_id,
        created_at=now, skipped={},
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(note)
            session.flush()
    except IntegrityError:
        log.info("event already notified", extra={"event_type": event_type})
        return None
    _plan(session, settings, note, now)
    session.flush()
    inbox.publish_on_commit(session, note)
    return note


def _plan(session: Session, settings: NotifySettings, note: Notification, now: datetime) -> None:
    prefs = preferences.load(session, note.account_id)
    skipped: dict[str, str] = {}
    targets: list[tuple[str, str]] = []  # (channel, target)

    if not prefs.allows(note.event_type, "wechat"):
        skipped["wechat"] = "preference"
    else:
        identity = wechat_identity(session, note.account_id, settings.wechat_appid)
        if identity is None:
            skipped["wechat"] = "no_wechat"
        elif not _has_quota(session, note.account_id, _wechat_template(session, settings, note.event_type)):
            skipped["wechat"] = "no_subscription"
        else:
            targets.append(("wechat", identity.id))
    if not prefs.allows(note.event_type, "push"):
        skipped["push"] = "preference"
    else:
        devices = session.scalars(
            select(Device).where(Device.account_id == note.account_id, Device.disabled_at.is_(None))
        ).all()
        targets += [(d.provider, d.id) for d in devices]
        if not devices:
            skipped["push"] = "no_device"
    if (
        targets
        and not note.critical
        and _sent_last_hour(session, note.account_id, now) >= settings.user_per_hour
    ):
        skipped |= {
            ("push" if channel in PUSH_PROVIDERS else channel): "rate_limited" for channel, _ in targets
        }
        targets = []

    due, held = now, None
    if prefs.quiet_hours and note.event_type not in settings.quiet_exempt:
        quiet_end = settings.quiet.ends_after(now)
        if quiet_end is not None:
            due, held = quiet_end, "quiet_hours"
    for channel, target in targets:
        session.add(
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
        )
    if note.critical:
        if not prefs.allows(note.event_type, "sms"):
            skipped["sms"] = "preference"
        else:
            # SMS only when nothing else delivered in time; at once when there is nothing else.
            wait = timedelta(seconds=settings.sms_fallback_seconds) if targets else timedelta(0)
            note.fallback_due_at = due + wait
    note.skipped = skipped


def _wechat_template(session: Session, settings: NotifySettings, event_type: str) -> str:
    return str(templates.effective(session, event_type, "wechat", "zh", settings=settings)["template_id"])


def wechat_identity(session: Session, account_id: str, appid: str) -> ChannelIdentity | None:
    return session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.account_id == account_id,
            ChannelIdentity.kind == WECHAT_OPENID,
            ChannelIdentity.issuer == appid,
        )
    )


def _has_quota(session: Session, account_id: str, template_id: str) -> bool:
    row = session.get(WechatSubscription, (account_id, template_id))
    return row is not None and (row.long_term or row.remaining > 0)


def _sent_last_hour(session: Session, account_id: str, now: datetime) -> int:
    since = now - timedelta(hours=1)
    return int(
        session.scalar(
            select(func.count(Message.id)).where(Message.account_id == account_id, Message.created_at > since)
        )
        or 0
    )


def process_notices(session: Session, settings: NotifySettings, *, limit: int = 50) -> list[Notification]:
    """Turn pending application notices into notifications; each notice is taken once.

    A batch is claimed in one transaction (rows locked with SKIP LOCKED on PostgreSQL, so
    several notifiers share the work) and committed together, which tells open apps. A notice
    that fails for a reason other than being a repeat is logged and left for the next round.
    Returns the notifications made.
    """
    N = ApplicationNotice
    stmt = select(N).where(N.processed_at.is_(None)).order_by(N.created_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    else:
        take_write_lock(session, N.__table__, false())  # SQLite: the write lock, no rows touched
    notices = list(session.scalars(stmt))
    made: list[Notification] = []
    now = clock.now()
    for notice in notices:
        try:
            with session.begin_nested():
                note = notify(
                    session, settings, account_id=notice.account_id, event_type=notice.event_type,
                    params=dict(notice.params or {}), dedupe_key=f"notice:{notice.dedupe_key}",
                    application_id=notice.application_id, link=f"/v1/applications/{notice.application_id}",
                )  # fmt: skip
        except Exception:
            log.exception("notice could not be notified; it stays pending", extra={"notice_id": notice.id})
            continue
        notice.processed_at = now
        if note is not None:
            made.append(note)
    session.commit()
    return made
