"""Notification tables: the inbox, one delivery row per channel, devices, quotas, preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, IdMixin, UTCDateTime, ordered_id

# Delivery states of a message (one channel, one target).
CREATED = "created"
SENDING = "sending"
SENT = "sent"  # the provider took it; its receipt decides (channels with receipts)
DELIVERED = "delivered"
TEMPORARY_FAILURE = "temporary_failure"  # retried with backoff
PERMANENT_FAILURE = "permanent_failure"  # the recipient cannot receive it (no quota, token gone)
TECHNICAL_FAILURE = "technical_failure"  # retries exhausted, or our side failed
FINAL_STATES = (DELIVERED, PERMANENT_FAILURE, TECHNICAL_FAILURE)
OPEN_STATES = (CREATED, SENDING, SENT, TEMPORARY_FAILURE)

HELD_QUIET = "quiet_hours"  # a message's held_reason while the quiet hours hold it


class Notification(Base):
    """One event told to one citizen: the inbox entry. Every event gets one; channels are extra."""

    __tablename__ = "notifications"
    erased_on_closure = True  # the inbox: nobody reads it once the account is closed
    __table_args__ = (
        UniqueConstraint("account_id", "dedupe_key", name="uq_notifications_dedupe"),
        Index("ix_notifications_inbox", "account_id", "created_at", "id"),
    )
    follows_person = True  # moves on an account merge

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=ordered_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    event_type: Mapped[str] = mapped_column(String(32))
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    link: Mapped[str | None] = mapped_column(String(255))
    application_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # SMS fallback: when it is due, and what it came to (not_needed, sent, no_phone, ...).
    fallback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    fallback_outcome: Mapped[str | None] = mapped_column(String(24))
    # Channels left out and why ({"push": "quiet_hours_held"...}), for operators and tests.
    skipped: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    @classmethod
    def settle_merge(cls, session: Session, *, source_id: str, target_id: str, now: datetime) -> None:
        """Before an account merge: an event both accounts were told (an app posting one message
        id to the person's phone account and to their WeChat account) would be two inbox entries
        under one key. The moved entry keeps its history under a key of its own (the closed
        account's id appended), so the merge does not fail on the one-entry-per-event rule."""
        theirs = select(cls.dedupe_key).where(cls.account_id == target_id).scalar_subquery()
        session.execute(
            update(cls)
            .where(cls.account_id == source_id, cls.dedupe_key.in_(theirs))
            .values(dedupe_key=func.substr(cls.dedupe_key, 1, 115) + ":merged:" + source_id)
            .execution_options(synchronize_session=False)
        )


class Message(IdMixin, Base):
    """One notification on one channel to one target, with its delivery state."""

    __tablename__ = "notification_messages"
    erased_on_closure = True  # with its notification: nothing more goes out
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", "target", name="uq_messages_target"),
        Index("ix_messages_due", "state", "due_at"),
        Index("ix_messages_provider", "channel", "provider_msg_id"),
    )

    follows_person = True  # with its notification: a held message still goes out after a merge

    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # wechat, apns, jpush, huawei, sms
    target: Mapped[str] = mapped_column(String(64))  # device id, channel identity id, account id
    state: Mapped[str] = mapped_column(String(20), default=CREATED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    held_reason: Mapped[str | None] = mapped_column(String(24))  # HELD_QUIET
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_msg_id: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryReceipt(IdMixin, Base):
    """A provider's report on a message; kept once, applied once (first final report wins)."""

    __tablename__ = "notification_receipts"
    __table_args__ = (UniqueConstraint("channel", "provider_msg_id", "status", name="uq_receipts_report"),)

    channel: Mapped[str] = mapped_column(String(16))
    provider_msg_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))  # delivered, permanent_failure
    detail: Mapped[str | None] = mapped_column(String(200))
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied: Mapped[bool] = mapped_column(Boolean, default=False)


class Device(IdMixin, Base):
    """An app installation that can receive push: provider + token."""

    __tablename__ = "devices"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    erased_on_closure = True  # push tokens
    __table_args__ = (UniqueConstraint("provider", "token", name="uq_devices_token"),)
    follows_person = True

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))  # apns, jpush, huawei
    token: Mapped[str] = mapped_column(String(255))
    platform: Mapped[str] = mapped_column(String(16))  # ios, android, harmony
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(String(32))  # unregistered, removed


class WechatSubscription(Base):
    """What the citizen allowed in the mini-program: messages left per template."""

    __tablename__ = "wechat_subscriptions"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    erased_on_closure = True
    # Moved on an account merge with the WeChat identity that granted them: a message held for
    # the quiet hours still goes out afterwards. Where both accounts hold one, they add up.
    follows_person = True

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    remaining: Mapped[int] = mapped_column(Integer, default=0)
    long_term: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @classmethod
    def settle_merge(cls, session: Session, *, source_id: str, target_id: str, now: datetime) -> None:
        """Before an account merge: the allowances of a template both accounts hold add up on
        the surviving account (long-term if either is), and the closed account's row goes."""
        theirs = {
            row.template_id: row for row in session.scalars(select(cls).where(cls.account_id == target_id))
        }
        for mine in session.scalars(select(cls).where(cls.account_id == source_id)).all():
            other = theirs.get(mine.template_id)
            if other is not None:
                other.remaining += mine.remaining
                other.long_term = other.long_term or mine.long_term
                other.updated_at = now
                session.delete(mine)
        session.flush()


class NotificationPreference(Base):
    """A citizen's choices: {event type: {channel: on/off}} and quiet hours on or off."""

    __tablename__ = "notification_preferences"
    refused_on_closed_account = True  # no new row once the account is closed: accounts.open_guard
    erased_on_closure = True
    follows_person = True  # the choices made on the account the person used move with them

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    channels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @classmethod
    def settle_merge(cls, session: Session, *, source_id: str, target_id: str, now: datetime) -> None:
        """Before an account merge: one row per account, so when both accounts hold choices the
        ones the person made last stand (a citizen who turned SMS off on the account they use
        keeps it off); the other row goes."""
        rows = {
            row.account_id: row
            for row in session.scalars(select(cls).where(cls.account_id.in_((source_id, target_id))))
        }
        if len(rows) < 2:
            return
        mine, theirs = rows[source_id], rows[target_id]
        session.delete(theirs if mine.updated_at > theirs.updated_at else mine)
        session.flush()


class NotificationTemplate(IdMixin, Base):
    """An operator's wording for one event on one channel in one language (overrides the default)."""

    __tablename__ = "notification_templates"
    __table_args__ = (
        UniqueConstraint("event_type", "channel", "lang", name="uq_notification_templates_key"),
    )

    event_type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))  # inbox, push, wechat, sms
    lang: Mapped[str] = mapped_column(String(8))  # zh, en
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
