"""The in-app inbox: newest first with a cursor, unread count, mark read; and the live feed.

Live updates go over Redis pub/sub (one channel per account), so an app connected to any
gunicorn worker hears a notification made by any notifier process. Pub/sub is fire-and-forget:
a stream that was not connected catches up from the database with Last-Event-ID.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.orm import Session

from core import clock
from core.db import is_id
from domain.accounts import open_guard
from notifications import templates
from notifications.errors import BadCursor, NotificationNotFound
from notifications.models import Notification

log = logging.getLogger(__name__)


def channel_name(account_id: str) -> str:
    return f"yiwang:notify:{account_id}"


def item(
    note: Notification, lang: str = "zh", *, session: Session | None = None, settings: Any = None
) -> dict[str, Any]:
    """The API form of a notification (in English when asked and a session is given)."""
    title, body = note.title, note.body
    if lang == "en" and session is not None:
        content = templates.effective(session, note.event_type, "inbox", "en", settings=settings)
        filled = templates.fill(note.event_type, note.params or {}, "en", note.created_at)
        title = templates.render_text(content["title"], filled)
        body = templates.render_text(content["body"], filled)
    return {
        "id": note.id,
        "event_type": note.event_type,
        "title": title,
        "body": body,
        "link": note.link,
        "application_id": note.application_id,
        "created_at": note.created_at,
        "read": note.read_at is not None,
        "read_at": note.read_at,
    }


def _encode(note: Notification) -> str:
    raw = f"{note.created_at.isoformat()}|{note.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, note_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:  # cursors carry their zone; a naive time cannot be compared
            raise ValueError(at)
        when = when.astimezone(UTC)  # out of range near year 1 or 9999: refused below
        if not is_id(note_id):  # a NUL byte or a thousand characters names no notification
            raise ValueError(note_id)
        return when, note_id
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise BadCursor() from exc


def page(
    session: Session, account_id: str, *, cursor: str | None, limit: int, unread_only: bool = False
) -> tuple[list[Notification], str | None, int]:
    """(notifications, next cursor or None, unread count), newest first."""
    N = Notification
    stmt = select(N).where(N.account_id == account_id)
    if unread_only:
        stmt = stmt.where(N.read_at.is_(None))
    if cursor:
        at, note_id = _decode(cursor)
        stmt = stmt.where(or_(N.created_at < at, and_(N.created_at == at, N.id < note_id)))
    rows = list(session.scalars(stmt.order_by(N.created_at.desc(), N.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    unread = session.scalar(select(func.count(N.id)).where(N.account_id == account_id, N.read_at.is_(None)))
    return rows, (_encode(rows[-1]) if more and rows else None), int(unread or 0)


def mark_read(session: Session, account_id: str, note_id: str) -> Notification:
    """Mark one of the citizen's notifications read (idempotent); 404 once the account closed
    (its lock first: the closure erases the inbox)."""
    open_guard.lock_for_change(session, account_id)
    note = session.get(Notification, note_id)
    if note is None or note.account_id != account_id:
        raise NotificationNotFound()
    if note.read_at is None:
        note.read_at = clock.now()
    return note


def mark_all_read(session: Session, account_id: str) -> int:
    """Mark every unread notification read; returns how many changed."""
    N = Notification
    result = session.execute(
        update(N).where(N.account_id == account_id, N.read_at.is_(None)).values(read_at=clock.now())
    )
    return int(result.rowcount or 0)


# Missed notifications a reconnecting stream sends again; beyond this the app reloads its inbox.
REPLAY_LIMIT = 100
RESYNC_CODE = "notifications.resync"
RESYNC_MESSAGE = {
    "zh": "错过的消息较多，请刷新消息中心查看全部",
    "en": "Many notifications were missed; reload the inbox to see them all",
}


@dataclass(frozen=True)
class CatchUp:
    """What a reconnecting stream owes the app: the missed notifications (oldest first), or,
    when more than the replay limit were missed, none of them and `resync_to`: the newest
    notification's id. The app is then told to reload its inbox (GET /v1/notifications), which
    shows them all, and resumes after `resync_to`."""

    items: list[Notification]
    resync_to: str | None = None


def since(session: Session, account_id: str, last_id: str | None, *, limit: int = REPLAY_LIMIT) -> CatchUp:
    """Notifications after `last_id` (oldest first), for a stream that reconnects; more than
    `limit` of them: a resync instead (see CatchUp)."""
    N = Notification
    if not is_id(last_id):  # none, or not an id this server gave: the stream starts from now
        return CatchUp([])
    last = session.get(N, last_id)
    if last is None or last.account_id != account_id:
        return CatchUp([])
    stmt = (
        select(N)
        .where(
            N.account_id == account_id,
            or_(N.created_at > last.created_at, and_(N.created_at == last.created_at, N.id > last.id)),
        )
        .order_by(N.created_at, N.id)
        .limit(limit + 1)
    )
    rows = list(session.scalars(stmt))
    if len(rows) <= limit:
        return CatchUp(rows)
    newest = session.scalar(
        select(N.id).where(N.account_id == account_id).order_by(N.created_at.desc(), N.id.desc()).limit(1)
    )
    return CatchUp([], resync_to=newest or rows[-1].id)


def resync_event(lang: str, *, limit: int = REPLAY_LIMIT) -> dict[str, Any]:
    """The body of the stream's `resync` event, in the stream's language."""
    return {
        "code": RESYNC_CODE,
        "message": RESYNC_MESSAGE["en" if lang == "en" else "zh"],
        "replay_limit": limit,
        "reload": "/v1/notifications",
    }


_LIVE_KEY = "yiwang_notify_live"


def publish_on_commit(session: Session, note: Notification, *, settings: Any) -> None:
    """Tell open apps about `note` once the transaction that made it commits."""
    session.info.setdefault(_LIVE_KEY, []).append((note.account_id, _payload(session, note, settings)))


def _payload(session: Session, note: Notification, settings: Any) -> str:
    # A stream opened in English must forward English: the wording in both languages travels
    # with the notice, since the stream has no database session to render it again.
    english = item(note, "en", session=session, settings=settings)
    live = {"item": item(note), "en": {"title": english["title"], "body": english["body"]}}
    return json.dumps(live, default=str, ensure_ascii=False)


def live_item(raw: str | bytes, lang: str) -> dict[str, Any]:
    """The API form, in `lang`, of a notice published to open streams."""
    data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    if "item" not in data:  # published by a process still on the old, Chinese-only form
        return data
    found = dict(data["item"])
    if lang == "en":
        found.update(data.get("en") or {})
    return found


def _send(redis: Redis, messages: list[tuple[str, str]]) -> None:
    for account_id, payload in messages:
        try:
            redis.publish(channel_name(account_id), payload)
        except RedisError:
            log.warning("live notification not published", extra={"account_id": account_id})


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    messages = session.info.pop(_LIVE_KEY, None)
    if messages:
        from core.redis import get_redis

        try:
            redis = get_redis()
        except Exception:  # no app (a script without Redis): the inbox still has them
            return
        _send(redis, messages)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_LIVE_KEY, None)
