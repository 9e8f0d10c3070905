"""Sending messages and keeping their delivery state.

created → sending → delivered | sent (→ delivered | permanent_failure by receipt)
                  | temporary_failure (→ sending again after a backoff with jitter)
                  | permanent_failure | technical_failure (retries or age exhausted)

A message is claimed with a lease, so a sender that dies mid-send gives it back; every message
ends in a final state. Provider receipts are kept once and applied once: a repeat changes
nothing, and a receipt that arrives before the send's own answer still wins.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import take_write_lock
from notifications.channels import Channel, Outcome
from notifications.models import (
    CREATED,
    DELIVERED,
    FINAL_STATES,
    PERMANENT_FAILURE,
    SENDING,
    SENT,
    TECHNICAL_FAILURE,
    TEMPORARY_FAILURE,
    DeliveryReceipt,
    Device,
    Message,
    Notification,
)
from notifications.settings import NotifySettings

log = logging.getLogger(__name__)


class Sender:
    """Claims due messages and sends each through its channel."""

    def __init__(self, settings: NotifySettings, channels: Mapping[str, Channel]) -> None:
        self.settings = settings
        self.channels = channels

    def _due(self, now: datetime):
        M = Message
        return or_(
            M.state.in_((CREATED, TEMPORARY_FAILURE)) & (M.due_at <= now),
            (M.state == SENDING) & (M.lease_until < now),  # a sender died holding it
        )

    def claim(self, session: Session, limit: int) -> list[str]:
        """Take up to `limit` due messages (committed as sending with a lease); their ids."""
        M = Message
        now = clock.now()
        stmt = select(M.id).where(self._due(now)).order_by(M.due_at).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        else:
            take_write_lock(session, M.__table__, false())  # SQLite: the write lock, no rows touched
        ids = list(session.scalars(stmt))
        if not ids:
            session.rollback()
            return []
        lease = now + timedelta(seconds=self.settings.lease)
        claimed = list(
            session.scalars(
                update(M)
                .where(M.id.in_(ids), self._due(now))
                .values(state=SENDING, attempts=M.attempts + 1, lease_until=lease, updated_at=now)
                .returning(M.id)
            )
        )
        session.commit()
        return claimed

    def deliver(self, session: Session, message_id: str) -> str:
        """Send one claimed message; returns its new state."""
        # One query for the message, its notification and (for push) its device: the channel's
        # session.get finds the device in the identity map.
        row = session.execute(
            select(Message, Notification, Device)
            .join(Notification, Notification.id == Message.notification_id)
            .outerjoin(Device, Device.id == Message.target)
            .where(Message.id == message_id)
        ).one_or_none()
        if row is None or row[0].state != SENDING:
            return "gone"
        message, note = row[0], row[1]
        attempts, created_at, name = message.attempts, message.created_at, message.channel
        channel = self.channels.get(name)
        if channel is None:
            outcome = Outcome(
                TECHNICAL_FAILURE, code="no_channel", detail=f"channel {message.channel} not configured"
            )
        else:
            try:
                outcome = channel.send(session, message, note)
            except Exception as exc:  # a bug or an unclassified failure: retried, then final
                log.exception("notification send failed unexpectedly", extra={"message_id": message_id})
                session.rollback()
                outcome = Outcome(TEMPORARY_FAILURE, code="unexpected", detail=type(exc).__name__)
        state = self.record(
            session, message_id, outcome, channel=name, attempts=attempts, created_at=created_at
        )
        session.commit()
        return state

    def record(
        self, session: Session, message_id: str, outcome: Outcome, *, channel: str, attempts: int,
        created_at: datetime,
    ) -> str:  # fmt: skip
        """Apply a send's outcome to a message that is still sending (flushed, not committed)."""
        M = Message
        now = clock.now()
        state = outcome.state
        values: dict = {
            "updated_at": now,
            "lease_until": None,
            "error_code": outcome.code,
            "error": outcome.detail,
        }
        if outcome.provider_msg_id:
            values["provider_msg_id"] = outcome.provider_msg_id
        if state == TEMPORARY_FAILURE:
            age = (now - created_at).total_seconds()
            if attempts >= self.settings.max_attempts or age >= self.settings.max_age:
                state = TECHNICAL_FAILURE
                values["error"] = f"gave up after {attempts} attempts: {outcome.detail or outcome.code}"[:300]
            else:
                delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** (attempts - 1))
                values["due_at"] = now + timedelta(seconds=delay * (0.5 + random.random() / 2))
        if state in (DELIVERED, SENT):
            values["sent_at"] = now
        if state in FINAL_STATES:
            values["final_at"] = now
        values["state"] = state
        # Only a message still sending takes the outcome: a receipt may have finished it already.
        changed = session.execute(
            update(M).where(M.id == message_id, M.state == SENDING).values(**values),
            execution_options={"synchronize_session": False},
        ).rowcount
        if not changed:
            current = session.scalar(select(M.state).where(M.id == message_id))
            return current or "gone"
        if state == SENT and outcome.provider_msg_id:
            _apply_waiting_receipt(session, channel, outcome.provider_msg_id)
        return state


def apply_receipt(
    session: Session,
    *,
    channel: str,
    provider_msg_id: str,
    delivered: bool,
    detail: str | None = None,
    reported_at: datetime | None = None,
) -> bool:
    """Keep a provider's report and move the message by it; True when this report moved it.

    Repeats are ignored; a report for a message still being sent waits and is applied when the
    send's answer is recorded; the first final report wins.
    """
    status = DELIVERED if delivered else PERMANENT_FAILURE
    receipt = DeliveryReceipt(
        channel=channel, provider_msg_id=provider_msg_id, status=status, detail=(detail or "")[:200] or None,
        reported_at=reported_at, received_at=clock.now(), applied=False,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(receipt)
            session.flush()
    except IntegrityError:
        return False  # the same report again
    return _apply_waiting_receipt(session, channel, provider_msg_id)


def _apply_waiting_receipt(session: Session, channel: str, provider_msg_id: str) -> bool:
    R, M = DeliveryReceipt, Message
    receipt = session.scalar(
        select(R)
        .where(R.channel == channel, R.provider_msg_id == provider_msg_id, R.applied.is_(False))
        .order_by(R.received_at)
        .limit(1)
    )
    if receipt is None:
        return False
    now = clock.now()
    moved = session.execute(
        update(M)
        .where(M.channel == channel, M.provider_msg_id == provider_msg_id, M.state == SENT)
        .values(state=receipt.status, final_at=now, updated_at=now, error=receipt.detail)
    ).rowcount
    if moved:
        session.execute(
            update(R).where(R.channel == channel, R.provider_msg_id == provider_msg_id).values(applied=True)
        )
    return bool(moved)


def fallback_pass(session: Session, settings: NotifySettings, *, limit: int = 200) -> int:
    """Critical notifications whose wait is over: SMS when nothing else reached the citizen.

    The citizen counts as reached when a message was delivered or the inbox entry was read.
    Commits; returns how many SMS were planned.
    """
    N, M = Notification, Message
    now = clock.now()
    notes = list(
        session.scalars(
            select(N)
            .where(N.fallback_due_at <= now, N.fallback_outcome.is_(None))
            .order_by(N.fallback_due_at)
            .limit(limit)
        )
    )
    planned = 0
    for note in notes:
        reached = note.read_at is not None or session.scalar(
            select(M.id).where(M.notification_id == note.id, M.state.in_((DELIVERED, SENT))).limit(1)
        )
        outcome = "not_needed" if reached else "sms"
        taken = session.execute(
            update(N).where(N.id == note.id, N.fallback_outcome.is_(None)).values(fallback_outcome=outcome)
        ).rowcount
        if taken and outcome == "sms":
            due, held = now, None
            quiet_end = (
                settings.quiet.ends_after(now) if note.event_type not in settings.quiet_exempt else None
            )
            if quiet_end is not None and _quiet_on(session, note.account_id):
                due, held = quiet_end, "quiet_hours"
            session.add(
                M(
                    notification_id=note.id,
                    account_id=note.account_id,
                    channel="sms",
                    target=note.account_id,
                    state=CREATED,
                    attempts=0,
                    due_at=due,
                    held_reason=held,
                    created_at=now,
                    updated_at=now,
                )  # fmt: skip
            )
            planned += 1
        session.commit()
    return planned


def _quiet_on(session: Session, account_id: str) -> bool:
    from notifications import preferences

    return preferences.load(session, account_id).quiet_hours


def message_states(session: Session, notification_id: str) -> list[dict]:
    """Where each message of a notification stands (for operators and tests)."""
    rows = session.scalars(
        select(Message).where(Message.notification_id == notification_id).order_by(Message.created_at)
    )
    return [
        {
            "channel": m.channel,
            "state": m.state,
            "attempts": m.attempts,
            "error_code": m.error_code,
            "held": m.held_reason,
            "due_at": m.due_at,
        }  # fmt: skip
        for m in rows
    ]
