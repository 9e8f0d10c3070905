"""Channels: each turns one message into one provider call and says how it went.

An Outcome is DELIVERED (the provider took it), SENT (taken; its receipt will decide),
TEMPORARY (try again later), PERMANENT (this recipient cannot get it) or TECHNICAL (our side or
the provider's is broken in a way retrying will not fix).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import clock
from core.text import shorten
from notifications import templates
from notifications.events import PUSH_PROVIDERS
from notifications.models import (
    DELIVERED,
    PERMANENT_FAILURE,
    SENT,
    TECHNICAL_FAILURE,
    TEMPORARY_FAILURE,
    Device,
    WechatSubscription,
)
from notifications.settings import NotifySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    state: str
    provider_msg_id: str | None = None
    code: str | None = None
    detail: str | None = None
    # Why the notification's `skipped` should name this channel ("preference"): written with the
    # message's final state, in the same transaction, so no rollback of a later send loses it.
    skipped: str | None = None
    # A frequency limit of the provider's (an SMS number's hourly or daily count): the next
    # attempt then. Such waits never end a message by their count, only by NOTIFY_MAX_AGE.
    retry_at: datetime | None = None


@dataclass(frozen=True)
class MessageView:
    """What a channel needs of a message (read in bulk, without ORM objects)."""

    id: str
    channel: str
    target: str
    account_id: str
    attempts: int
    created_at: datetime
    state: str
    device_token: str | None = None  # push: the device's token
    device_disabled: bool = False


@dataclass(frozen=True)
class NoteView:
    """What a channel needs of a notification."""

    id: str
    event_type: str
    params: dict[str, Any]
    link: str | None
    application_id: str | None
    created_at: datetime


class Channel(Protocol):
    def send(self, session: Session, message: MessageView, note: NoteView) -> Outcome: ...


class WechatChannel:
    """Mini-program subscribe messages; a one-time quota is spent only on a send WeChat took."""

    def __init__(self, client: Any, settings: NotifySettings) -> None:
        self.client = client
        self.settings = settings

    def send(self, session: Session, message: MessageView, note: NoteView) -> Outcome:
        from domain.accounts.models import ChannelIdentity
        from integrations.wechat.errors import WechatApiError, WechatRetryableError

        off = switched_off(session, message, note)
        if off is not None:
            return off
        content = templates.effective(session, note.event_type, "wechat", "zh", settings=self.settings)
        template = str(content["template_id"])
        identity = session.get(ChannelIdentity, message.target)
        if identity is None or identity.account_id != message.account_id:
            return Outcome(PERMANENT_FAILURE, code="no_wechat", detail="the WeChat identity is gone")
        if not _take_quota(session, message.account_id, template):
            return Outcome(PERMANENT_FAILURE, code="no_quota", detail="no subscription left for the template")
        session.commit()  # the quota is spent before the call: two senders never share one
        try:
            # {time} is when the case changed, not when a message held overnight went out.
            data = templates.wechat_message(
                content, templates.fill(note.event_type, note.params or {}, "zh", note.created_at)
            )
            page = content.get("page")
            if page is None or templates.page_problem(page) is not None:  # saved before pages were checked
                page = self.settings.wechat_page
            if note.application_id:  # a page saved with a query of its own keeps it
                page += f"{'&' if '?' in page else '?'}id={note.application_id}"
            msgid = self.client.send_subscribe_message(
                identity.lookup, template, data, page=page, miniprogram_state=self.settings.wechat_state
            )
        except WechatRetryableError as exc:
            _refund(session, message.account_id, template)
            return Outcome(TEMPORARY_FAILURE, code=str(exc.errcode or "retryable"), detail=str(exc)[:200])
        except WechatApiError as exc:
            if exc.errcode == 43101:  # the citizen refused or the quota WeChat keeps is gone
                _clear_quota(session, message.account_id, template)
                # Committed now, like the quota taken above: what WeChat said holds whatever the
                # rest of the batch does (a later send that fails rolls the session back).
                session.commit()
                return Outcome(PERMANENT_FAILURE, code="43101", detail="user refused or quota gone")
            _refund(session, message.account_id, template)  # WeChat keeps the quota on other errors
            state = PERMANENT_FAILURE if exc.errcode in (40003, 47003, 41030) else TECHNICAL_FAILURE
            return Outcome(state, code=str(exc.errcode), detail=str(exc)[:200])
        except Exception:
            # Unclassified (a Redis blip reading the shared access token, a bug in rendering):
            # WeChat did not take the message, so the acceptance goes back, committed now since
            # the sender rolls back before retrying the message.
            session.rollback()
            _refund(session, message.account_id, template)
            session.commit()
            raise
        return Outcome(DELIVERED, provider_msg_id=str(msgid) if msgid is not None else None)


def _take_quota(session: Session, account_id: str, template: str) -> bool:
    W = WechatSubscription
    row = session.get(W, (account_id, template))
    if row is None:
        return False
    if row.long_term:
        return True
    taken = session.execute(
        update(W)
        .where(W.account_id == account_id, W.template_id == template, W.remaining > 0)
        .values(remaining=W.remaining - 1, updated_at=clock.now())
    ).rowcount
    return bool(taken)


def _refund(session: Session, account_id: str, template: str) -> None:
    W = WechatSubscription
    session.execute(
        update(W)
        .where(W.account_id == account_id, W.template_id == template, W.long_term.is_(False))
        .values(remaining=W.remaining + 1, updated_at=clock.now())
    )


def _clear_quota(session: Session, account_id: str, template: str) -> None:
    W = WechatSubscription
    session.execute(
        update(W)
        .where(W.account_id == account_id, W.template_id == template)
        .values(remaining=0, long_term=False, updated_at=clock.now())
    )


class PushChannel:
    """App push through one provider (APNs, JPush, Huawei); a token the provider says is gone
    disables the device, so later events skip it."""

    def __init__(self, provider: str, client: Any, settings: NotifySettings) -> None:
        self.provider = provider
        self.client = client
        self.settings = settings

    def send(self, session: Session, message: MessageView, note: NoteView) -> Outcome:
        if message.device_token is None or message.device_disabled:
            return Outcome(PERMANENT_FAILURE, code="device_gone", detail="the device was removed")
        off = switched_off(session, message, note)
        if off is not None:
            return off
        extras = {"notification_id": note.id, "event_type": note.event_type, "link": note.link or ""}
        content = templates.effective(session, note.event_type, "push", "zh", settings=self.settings)
        filled = templates.fill(note.event_type, note.params or {}, "zh", note.created_at)
        text = (
            templates.render_text(content["title"], filled),
            # A lock screen shows about two lines; the inbox keeps a department's long reason whole.
            shorten(templates.render_text(content["body"], filled), templates.LIMITS["push_body"]),
        )
        try:
            provider_id = self._push(message.device_token, text, message, extras)
        except Exception as exc:
            if not hasattr(exc, "retryable"):
                raise
            code = str(getattr(exc, "reason", None) or getattr(exc, "code", "") or type(exc).__name__)
            if exc.unregistered or code == "BadDeviceToken":  # type: ignore[attr-defined]
                disable_device(session, message.target, "unregistered" if exc.unregistered else "bad_token")  # type: ignore[attr-defined]
                # Committed now: the provider's word holds whatever the rest of the batch does (a
                # later send that fails rolls the session back), and no row lock is held over
                # the batch's other provider calls.
                session.commit()
                return Outcome(PERMANENT_FAILURE, code=code, detail=str(exc)[:200])
            state = TEMPORARY_FAILURE if exc.retryable else TECHNICAL_FAILURE  # type: ignore[attr-defined]
            return Outcome(state, code=code, detail=str(exc)[:200])
        return Outcome(DELIVERED, provider_msg_id=provider_id or None)

    def _push(self, token: str, text: tuple[str, str], message: MessageView, extras: dict[str, str]) -> str:
        title, body = text
        if self.provider == "apns":
            alert = {
                "alert": {"title": title, "body": body},
                "sound": "default",
                "thread-id": extras["event_type"],
            }
            return self.client.send(token, {"aps": alert, **extras}, apns_id=message.id)
        if self.provider == "jpush":
            sendno = int(message.id.replace("-", "")[:7], 16)
            return self.client.push(token, title=title, body=body, extras=extras, sendno=sendno)
        return self.client.send(token, title=title, body=body, data=extras)


def disable_device(session: Session, device_id: str, reason: str) -> None:
    """Stop pushing to a device the provider says is gone (not committed: the caller commits)."""
    changed = session.execute(
        update(Device)
        .where(Device.id == device_id, Device.disabled_at.is_(None))
        .values(disabled_at=clock.now(), disabled_reason=reason),
        execution_options={"synchronize_session": False},
    ).rowcount
    if changed:
        log.info("device disabled", extra={"device_id": device_id, "reason": reason})


OPTED_OUT = "preference"  # a channel the citizen switched off (skipped reason and error code)
NOT_NEEDED = "not_needed"  # an SMS fallback whose citizen was reached while it waited


def switched_off(session: Session, message: MessageView, note: NoteView) -> Outcome | None:
    """The outcome of a message whose channel the citizen switched off for this event, or None.

    Asked at the send, not only when the event was planned: a message may have waited hours
    (quiet hours, retries), and a citizen who switched a channel off meanwhile gets nothing on
    it: the message ends as `permanent_failure` with code `preference`, never sent."""
    from notifications import preferences

    channel = "push" if message.channel in PUSH_PROVIDERS else message.channel
    if preferences.load(session, message.account_id).allows(note.event_type, channel):
        return None
    return Outcome(
        PERMANENT_FAILURE, code=OPTED_OUT, detail=f"the citizen switched {channel} off", skipped=OPTED_OUT
    )


def no_longer_true(session: Session, note: NoteView) -> Outcome | None:
    """The outcome of a message whose notice the citizen made untrue while it waited (quiet hours,
    retries), or None: an appointment reminder of a booking cancelled or moved meanwhile
    (`domain.appointments.visits.notice_holds`). It ends as `permanent_failure` with code
    `not_needed`, never sent; the notice stays in the inbox."""
    from domain.appointments import visits

    if visits.notice_holds(session, note.event_type, note.link):
        return None
    why = "the booking was cancelled or moved meanwhile"
    return Outcome(PERMANENT_FAILURE, code=NOT_NEEDED, detail=why, skipped=NOT_NEEDED)


def reached_meanwhile(session: Session, message: MessageView, note: NoteView) -> bool:
    """Whether the citizen read the notice, or another of its messages reached them, since the
    SMS fallback was decided (it may have been held for the quiet hours)."""
    from notifications.models import Message, Notification

    row = session.get(Notification, note.id)
    if row is None or row.read_at is not None:
        return True
    return (
        session.scalar(
            select(Message.id)
            .where(
                Message.notification_id == row.id,
                Message.id != message.id,
                Message.state.in_((DELIVERED, SENT)),
            )
            .limit(1)
        )
        is not None
    )


def skip_channel(session: Session, notification_id: str, channel: str, reason: str) -> None:
    """Record on the notification that `channel` was left out, and why (with the caller's commit).
    A channel does not call this itself: it says so in its Outcome (`skipped`), and the sender
    writes it with the message's state."""
    from notifications.models import Notification

    note = session.get(Notification, notification_id)
    if note is not None:
        note.skipped = dict(note.skipped or {}) | {channel: reason}


class SmsChannel:
    """SMS through the foundation's client; the number is decrypted for the send, audited."""

    def __init__(self, client: Any, encryptor: Any, settings: NotifySettings) -> None:
        self.client = client
        self.encryptor = encryptor
        self.settings = settings

    def send(self, session: Session, message: MessageView, note: NoteView) -> Outcome:
        from domain.accounts import service as accounts
        from integrations.sms.client import SmsError

        # Asked again at the send: the message may have waited (quiet hours, retries) since the
        # fallback was decided, and a citizen who switched SMS off meanwhile gets none; nor one
        # who read the notice, or was reached on another channel, meanwhile (a paid SMS that is
        # no longer a fallback).
        off = switched_off(session, message, note)
        if off is not None:
            return off
        if reached_meanwhile(session, message, note):
            why = "the citizen read the notice or was reached on another channel meanwhile"
            return Outcome(PERMANENT_FAILURE, code=NOT_NEEDED, detail=why, skipped=NOT_NEEDED)
        phone = accounts.full_phone(
            session, encryptor=self.encryptor, account_id=message.account_id,
            actor_id="notifications.sms", actor_type="system", request_id=message.id,
        )  # fmt: skip
        if phone is None:
            return Outcome(PERMANENT_FAILURE, code="no_phone", detail="the account has no phone")
        session.commit()  # keep the audit record of the decryption
        content = templates.effective(session, note.event_type, "sms", "zh", settings=self.settings)
        filled = templates.fill(note.event_type, note.params or {}, "zh", note.created_at)
        params = templates.sms_params(content, filled)
        try:
            result = self.client.send(phone, str(content["template_id"]), params, session_context=message.id)
        except SmsError as exc:
            state = TEMPORARY_FAILURE if exc.retryable else PERMANENT_FAILURE
            if exc.code.startswith(("AuthFailure", "FailedOperation.Template", "FailedOperation.Signature")):
                state = TECHNICAL_FAILURE  # our configuration, not the citizen's number
            retry_at = self._limit_lifts(session, exc.code, message, note) if exc.retryable else None
            return Outcome(state, code=exc.code, detail=exc.message[:200], retry_at=retry_at)
        return Outcome(SENT, provider_msg_id=result.serial_no)

    def _limit_lifts(
        self, session: Session, code: str, message: MessageView, note: NoteView
    ) -> datetime | None:
        """When to try again after an hourly or daily frequency limit (None for other errors:
        the usual backoff, which outlasts the 30-second limit): a critical notice to a citizen
        whose only channel is SMS must wait for the window, not be given up after a minute of
        retries. Hourly: every 15 minutes (the window slides; its end is not told). Daily: just
        after midnight in Beijing. Neither inside the quiet hours, as for a first send."""
        from notifications import preferences

        now = clock.now()
        if code in HOURLY_LIMITS:
            at = now + timedelta(minutes=15)
        elif code in DAILY_LIMITS:
            local = now.astimezone(clock.BEIJING)
            midnight = datetime.combine(local.date() + timedelta(days=1), time(0, 5), tzinfo=clock.BEIJING)
            at = midnight.astimezone(now.tzinfo)
        else:
            return None
        quiet_end = (
            self.settings.quiet.ends_after(at) if note.event_type not in self.settings.quiet_exempt else None
        )
        if quiet_end is not None and preferences.load(session, message.account_id).quiet_hours:
            at = quiet_end
        return at


# Tencent Cloud SMS frequency limits that lift only after their window (integrations.md).
HOURLY_LIMITS = frozenset({"LimitExceeded.PhoneNumberOneHourLimit", "LimitExceeded.DeliveryFrequencyLimit"})
DAILY_LIMITS = frozenset({
    "LimitExceeded.PhoneNumberDailyLimit", "LimitExceeded.PhoneNumberSameContentDailyLimit",
    "LimitExceeded.AppDailyLimit", "LimitExceeded.DailyLimit",
})  # fmt: skip


CHANNEL_STATES = (DELIVERED, SENT, TEMPORARY_FAILURE, PERMANENT_FAILURE, TECHNICAL_FAILURE)
