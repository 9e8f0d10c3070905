"""Sending messages and keeping their delivery state.

created → sending → delivered | sent (→ delivered | permanent_failure by receipt)
                  | temporary_failure (→ sending again after a backoff with jitter)
                  | permanent_failure | technical_failure (retries or age exhausted)

A message is claimed with a lease, so a sender that dies mid-send gives it back; every message
ends in a final state. Provider receipts are kept once and applied once: a repeat changes
nothing, and a receipt that arrives before the send's own answer still wins.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import constraint_of, take_write_lock
from domain.accounts.models import Account
from notifications.channels import (
    OPTED_OUT,
    Channel,
    MessageView,
    NoteView,
    Outcome,
    no_longer_true,
    skip_channel,
)
from notifications.events import PUSH_PROVIDERS
from notifications.models import (
    CREATED,
    DELIVERED,
    FINAL_STATES,
    HELD_QUIET,
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

    def claim(self, session: Session, limit: int) -> list[tuple[str, int]]:
        """Take up to `limit` due messages (committed as sending with a lease); (id, attempt) each.

        The attempt number is the claim's token: once a lease runs out another sender may claim
        the message again (attempt + 1), and the first sender's send and record are then refused.
        """
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
        claimed = [
            (row_id, int(attempt))
            for row_id, attempt in session.execute(
                update(M)
                .where(M.id.in_(ids), self._due(now))
                .values(state=SENDING, attempts=M.attempts + 1, lease_until=lease, updated_at=now)
                .returning(M.id, M.attempts)
            )
        ]
        session.commit()
        return claimed

    def deliver_batch(self, session: Session, claimed: list[tuple[str, int]]) -> dict[str, str]:
        """Send claimed messages one after another; their outcomes are written together.

        `claimed` is what claim returned: (id, attempt). A message whose claim was taken over
        (its lease ran out and another sender claimed it again) is left to that sender: neither
        sent nor recorded here, so the citizen never gets it twice. One query reads the messages
        with their notifications and (for push) devices; the channels' session.get finds the
        devices in the identity map. Returns id → new state.
        """
        M, N, D, A = Message, Notification, Device, Account
        attempts = dict(claimed)
        rows = session.execute(
            select(
                M.id, M.channel, M.target, M.account_id, M.attempts, M.created_at, M.state, D.token,
                D.disabled_at, N.id, N.event_type, N.params, N.link, N.application_id, N.created_at,
                M.lease_until, D.account_id, A.merged_into_id,
            )
            .join(N, N.id == M.notification_id)
            .outerjoin(D, D.id == M.target)
            .outerjoin(A, A.id == M.account_id)
            .where(M.id.in_(list(attempts)))
        ).all()  # fmt: skip
        session.rollback()  # no transaction held open during the provider calls
        results: list[tuple[str, str, int, datetime, Outcome]] = []
        for r in rows:
            if r[6] != SENDING or r[4] != attempts[r[0]]:
                continue  # finished meanwhile, or claimed again by another sender
            # Stop before the lease runs out: a send still going when another sender may claim
            # the message again would reach the citizen twice. Not recorded: the lease brings it back.
            if r[15] is None or clock.now() + timedelta(seconds=self.settings.send_margin) >= r[15]:
                continue
            message = MessageView(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] is not None)
            note = NoteView(r[9], r[10], r[11] or {}, r[12], r[13], r[14])
            channel = self.channels.get(message.channel)
            if message.channel in PUSH_PROVIDERS and r[16] is not None and r[16] not in (r[3], r[17]):
                # The token was registered by another account (the phone changed hands): this
                # notice is the previous owner's and must not reach the phone. (An account merge
                # moves devices to the surviving account: the same person, still delivered.)
                outcome = Outcome(
                    PERMANENT_FAILURE, code="device_moved", detail="the device now belongs to another account"
                )
            elif channel is None:
                outcome = Outcome(
                    TECHNICAL_FAILURE, code="no_channel", detail=f"channel {message.channel} not configured"
                )
            elif (untrue := no_longer_true(session, note)) is not None:
                outcome = untrue
            else:
                try:
                    outcome = channel.send(session, message, note)
                except Exception as exc:  # a bug or an unclassified failure: retried, then final
                    log.exception("notification send failed unexpectedly", extra={"message_id": message.id})
                    session.rollback()
                    outcome = Outcome(TEMPORARY_FAILURE, code="unexpected", detail=type(exc).__name__)
            results.append((message.id, message.channel, message.attempts, message.created_at, outcome))
        states = self.record_many(session, results)
        session.commit()
        return states

    def record_many(
        self, session: Session, results: list[tuple[str, str, int, datetime, Outcome]]
    ) -> dict[str, str]:
        """Apply outcomes to messages still sending, in one statement for all (not committed).

        A message no longer sending (a receipt finished it first) keeps its state, and so does
        one claimed again since (its attempt moved on): that sender records its own outcome.
        """
        now = clock.now()
        params: list[dict[str, Any]] = []
        states: dict[str, str] = {}
        for message_id, _channel, attempts, created_at, outcome in results:
            state, error, due_at = outcome.state, outcome.detail, None
            if state == TEMPORARY_FAILURE and outcome.retry_at is not None:
                # A frequency limit: wait for its window, however many attempts that makes.
                if (outcome.retry_at - created_at).total_seconds() >= self.settings.max_age:
                    state = TECHNICAL_FAILURE
                    error = f"gave up: {outcome.code} lifts after NOTIFY_MAX_AGE"[:300]
                else:
                    due_at = max(now, outcome.retry_at) + timedelta(seconds=60 * random.random())
            elif state == TEMPORARY_FAILURE:
                age = (now - created_at).total_seconds()
                if attempts >= self.settings.max_attempts or age >= self.settings.max_age:
                    state = TECHNICAL_FAILURE
                    error = f"gave up after {attempts} attempts: {outcome.detail or outcome.code}"[:300]
                else:
                    delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** (attempts - 1))
                    due_at = now + timedelta(seconds=delay * (0.5 + random.random() / 2))
            params.append({
                "b_id": message_id, "b_attempt": attempts, "b_state": state, "b_due": due_at,
                "b_provider": outcome.provider_msg_id,
                "b_code": outcome.code[:64] if outcome.code else outcome.code, "b_error": error,
                "b_sent": now if state in (DELIVERED, SENT) else None,
                "b_final": now if state in FINAL_STATES else None,
            })  # fmt: skip
            states[message_id] = state
        if not params:
            return states
        t = Message.__table__
        stmt = (
            t.update()
            .where(t.c.id == bindparam("b_id"), t.c.state == SENDING, t.c.attempts == bindparam("b_attempt"))
            .values(
                state=bindparam("b_state"),
                due_at=func.coalesce(bindparam("b_due", type_=t.c.due_at.type), t.c.due_at),
                provider_msg_id=func.coalesce(bindparam("b_provider"), t.c.provider_msg_id),
                error_code=bindparam("b_code"), error=bindparam("b_error"),
                sent_at=func.coalesce(bindparam("b_sent", type_=t.c.sent_at.type), t.c.sent_at),
                final_at=bindparam("b_final", type_=t.c.final_at.type), lease_until=None, updated_at=now,
            )
        )  # fmt: skip
        result = session.connection().execute(stmt, params)
        if not session.get_bind().dialect.supports_sane_multi_rowcount or result.rowcount != len(params):
            # Some claim may have been taken over meanwhile: report what the table holds.
            held = dict(
                session.execute(select(Message.id, Message.state).where(Message.id.in_(list(states)))).all()
            )
            states = {message_id: held.get(message_id, "gone") for message_id in states}
        # A channel left out (the citizen switched SMS off) is noted on the notification in this
        # transaction, with the message's final state: a later send of the batch that fails and
        # rolls back cannot lose it. Not for a message claimed again meanwhile: its sender notes it.
        skips = [
            (message_id, channel, outcome.skipped)
            for message_id, channel, _a, _c, outcome in results
            if outcome.skipped and states.get(message_id) == outcome.state
        ]
        if skips:
            notes = dict(
                session.execute(
                    select(Message.id, Message.notification_id).where(Message.id.in_([s[0] for s in skips]))
                ).all()
            )
            for message_id, channel, reason in skips:
                if message_id in notes:
                    skip_channel(session, notes[message_id], channel, reason)
        # Receipts may have come first (SMS): apply any kept for what was just sent; a message a
        # receipt already finished keeps that state. Under the reports' locks: a report whose
        # transaction is still open is applied here once it commits (below, in apply_receipt).
        lock_reports(session, [(ch, o.provider_msg_id) for _m, ch, _a, _c, o in results if _was_sent(o)])
        for message_id, channel, _a, _c, outcome in results:
            if _was_sent(outcome) and outcome.provider_msg_id:
                _apply_waiting_receipt(session, channel, outcome.provider_msg_id)
                states[message_id] = (
                    session.scalar(select(Message.state).where(Message.id == message_id)) or "gone"
                )
        return states


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
    lock_reports(session, [(channel, provider_msg_id)])
    status = DELIVERED if delivered else PERMANENT_FAILURE
    receipt = DeliveryReceipt(
        channel=channel, provider_msg_id=provider_msg_id, status=status, detail=(detail or "")[:200] or None,
        reported_at=reported_at, received_at=clock.now(), applied=False,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(receipt)
            session.flush()
    except IntegrityError as exc:
        if constraint_of(exc) != "uq_receipts_report":
            raise
        return False  # the same report again
    return _apply_waiting_receipt(session, channel, provider_msg_id)


def _was_sent(outcome: Outcome) -> bool:
    return outcome.state == SENT and bool(outcome.provider_msg_id)


def lock_reports(session: Session, reports: Iterable[tuple[str, str | None]]) -> None:
    """Hold the locks of these (channel, provider message id) reports until the transaction
    ends (PostgreSQL: an advisory lock per report, taken in key order so two batches cannot
    deadlock; SQLite has one writer at a time already).

    A report kept while the send's answer was being recorded was lost otherwise: the report's
    UPDATE found the message still sending, and the sender's look-up for waiting reports could
    not see the report's uncommitted row, so the SMS stayed `sent` for good. With both taking
    the lock, whichever comes second sees what the first committed."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = {_report_key(channel, msg_id) for channel, msg_id in reports if msg_id}
    for key in sorted(keys):
        session.execute(select(func.pg_advisory_xact_lock(key)))


def _report_key(channel: str, provider_msg_id: str) -> int:
    digest = hashlib.sha256(f"yiwang:receipt:{channel}:{provider_msg_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # a positive 63-bit bigint


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
    The SMS preference is read again now, not taken from when the event was planned: a citizen
    who switched SMS off meanwhile gets none (outcome and `skipped["sms"]`: "preference").
    Commits; returns how many SMS were planned.
    """
    from notifications import preferences

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
        prefs = preferences.load(session, note.account_id)
        if reached:
            outcome = "not_needed"
        elif not prefs.allows(note.event_type, "sms"):
            outcome = OPTED_OUT
        else:
            outcome = "sms"
        values: dict[str, Any] = {"fallback_outcome": outcome}
        if outcome == OPTED_OUT:
            values["skipped"] = dict(note.skipped or {}) | {"sms": OPTED_OUT}
        taken = session.execute(
            update(N).where(N.id == note.id, N.fallback_outcome.is_(None)).values(**values)
        ).rowcount
        if taken and outcome == "sms":
            due, held = now, None
            quiet_end = (
                settings.quiet.ends_after(now) if note.event_type not in settings.quiet_exempt else None
            )
            if quiet_end is not None and prefs.quiet_hours:
                due, held = quiet_end, HELD_QUIET
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
            "error": m.error,
            "held": m.held_reason,
            "due_at": m.due_at,
        }  # fmt: skip
        for m in rows
    ]
