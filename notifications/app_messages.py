"""Notices a convenience app posts to a citizen's inbox (scope notifications.send).

Inbox only (events.INBOX_ONLY); at most a few a day per app and citizen; the app names each
message, so a retry of the same message id is one notice, not two.
"""

from __future__ import annotations

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
    ratelimiter.hit("oauth-app-message", f"{client_id}:{account_id}", limit=PER_DAY, window=86400)
    note = fanout.notify(
        session, settings, account_id=account_id, event_type="app_message",
        params={"client_name": client_name, "title": title, "body": body},
        dedupe_key=f"app:{client_id}:{message_id}",
    )  # fmt: skip
    session.commit()
    return note
