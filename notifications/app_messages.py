"""Notices a convenience app posts to a citizen's inbox (scope notifications.send).

Inbox only (events.INBOX_ONLY); at most a few a day per app and citizen; the app names each
message, so a retry of the same message id is one notice, not two.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.ratelimit import RateLimiter
from notifications import fanout
from notifications.models import Notification
from notifications.settings import NotifySettings

PER_DAY = 20


def post(
    session: Session,
    settings: NotifySettings,
    ratelimiter: RateLimiter,
    *,
    account_id: str,
    client_id: str,
    client_name: str,
    message_id: str,
    title: str,
    body: str,
) -> Notification | None:
    """Record the notice (committed). None when this message id was already posted."""
    dedupe_key = f"app:{client_id}:{message_id}"
    # A retry of a posted message is the same notice: answered without spending the day's quota
    # (nor refused for it).
    if _posted(session, account_id, dedupe_key):
        return None
    scope, ident = "oauth-app-message", f"{client_id}:{account_id}"
    counted = ratelimiter.hit(scope, ident, limit=PER_DAY, window=86400)
    try:
        note = fanout.notify(
            session, settings, account_id=account_id, event_type="app_message",
            params={"client_name": client_name, "title": title, "body": body}, dedupe_key=dedupe_key,
        )  # fmt: skip
        session.commit()
    except Exception:
        ratelimiter.undo(scope, ident, counted)
        raise
    if note is None:  # the same message posted at the same moment by a concurrent retry
        ratelimiter.undo(scope, ident, counted)
    return note


def _posted(session: Session, account_id: str, dedupe_key: str) -> bool:
    found = session.scalar(
        select(Notification.id).where(
            Notification.account_id == account_id, Notification.dedupe_key == dedupe_key
        )
    )
    return found is not None
