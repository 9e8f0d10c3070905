"""The citizen's inbox, its live stream (Server-Sent Events) and notification preferences."""

from __future__ import annotations

import collections
import json
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import BEARER_SECURITY, current_principal, require_citizen
from api.blueprint import Blueprint
from api.deps import services
from api.i18n import language
from api.idempotency import idempotent
from api.openapi_answers import BOOLEAN, STRING, array_of, json_answer, object_of, text_answer
from api.request_body import whole_body
from api.schemas import StrictSchema
from core import clock, lifecycle
from core.db import db
from core.errors import Text
from domain.auth.errors import SessionRevoked
from notifications import inbox, preferences
from notifications.errors import BadPreferences, StreamsBusy

blp = Blueprint("notifications", __name__, url_prefix="/v1/notifications", description="消息中心 / Inbox")
blp.before_request(require_citizen)
prefs_blp = Blueprint(
    "notification_preferences", __name__, url_prefix="/v1/me/notification-preferences",
    description="通知设置 / Notification preferences",
)  # fmt: skip
prefs_blp.before_request(require_citizen)
BLUEPRINTS = [blp, prefs_blp]

# Live streams a worker process holds at once: each holds a thread, and the rest must stay free
# for ordinary requests. Past this the stream answers 503 and the app polls the inbox.
_streams = {"open": 0}
_streams_lock = threading.Lock()


class InboxQuerySchema(StrictSchema):
    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    unread = fields.Boolean(load_default=False)


class NotificationSchema(StrictSchema):
    id = fields.String()
    event_type = fields.String()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    application_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    read = fields.Boolean()
    read_at = fields.DateTime(allow_none=True)


class InboxPageSchema(StrictSchema):
    items = fields.List(fields.Nested(NotificationSchema))
    next_cursor = fields.String(allow_none=True)
    unread_count = fields.Integer()


class ReadAllSchema(StrictSchema):
    marked = fields.Integer()
    unread_count = fields.Integer()


_BODY_REQUIRED = Text("Send the preferences as a JSON body", "请提交通知设置")


class PreferencesSchema(StrictSchema):
    events = fields.Dict(
        keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Raw()),
        load_default=dict,
        metadata={"description": '{event type: {"wechat"|"push"|"sms": true|false}}; unlisted = on'},
    )  # fmt: skip
    quiet_hours = fields.Raw(load_default=True, metadata={"description": "hold push and SMS 22:00-07:00"})


@blp.route("")
class Inbox(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(InboxQuerySchema, location="query")
    @blp.response(200, InboxPageSchema)
    def get(self, query: dict) -> dict:
        """Notifications, newest first, with the unread count; pass next_cursor for more."""
        p = current_principal()
        rows, cursor, unread = inbox.page(
            db.reader(),
            p.account_id,
            cursor=query.get("cursor"),
            limit=query["limit"],
            unread_only=query["unread"],
        )
        lang, settings = language(), services().notifications.settings
        items = [inbox.item(n, lang, session=db.reader(), settings=settings) for n in rows]
        return {"items": items, "next_cursor": cursor, "unread_count": unread}


@blp.route("/<string:notification_id>/read")
class ReadOne(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, NotificationSchema)
    def post(self, notification_id: str) -> dict:
        """Mark one notification read (repeating it changes nothing)."""
        p = current_principal()
        session = db.session()
        note = inbox.mark_read(session, p.account_id, notification_id)
        session.commit()
        return inbox.item(note, language(), session=session, settings=services().notifications.settings)


@blp.route("/read-all")
class ReadAll(MethodView):
    @idempotent
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, ReadAllSchema)
    def post(self) -> dict:
        """Mark every notification read."""
        p = current_principal()
        session = db.session()
        marked = inbox.mark_all_read(session, p.account_id)
        session.commit()
        return {"marked": marked, "unread_count": 0}


@blp.route("/stream")
class Stream(MethodView):
    @blp.doc(
        security=BEARER_SECURITY, responses={200: text_answer("Server-Sent Events", "text/event-stream")}
    )
    def get(self) -> Response:
        """Live notifications as Server-Sent Events (`event: notification`, id = notification id).

        Reconnect with Last-Event-ID to receive what was missed. Comments (`: ping`) keep the
        connection open; the server ends a stream after a few minutes, or when the access token
        expires, and the client reconnects (with a refreshed token). When the session is signed
        out (logout, ended from another device, account locked) the stream sends
        `event: session_ended` and ends: the app asks the citizen to log in again. When more
        notifications were missed than a stream replays (100), it sends `event: resync` instead
        of them (id = the newest notification): the app reloads GET /v1/notifications.
        """
        p = current_principal()
        revocations = services().revocations
        jti = p.claims.get("jti") if p.third_party else None
        cfg = current_app.config
        limit = int(cfg["NOTIFY_SSE_PER_WORKER"])
        free_dropped()
        with _streams_lock:
            busy = _streams["open"] >= limit
            if not busy:
                _streams["open"] += 1
        if busy:
            raise StreamsBusy(headers={"Retry-After": "10"})
        try:
            redis = services().notifications.redis
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(inbox.channel_name(p.account_id))
            reader, lang = db.reader(), language()
            settings = services().notifications.settings
            catch_up = inbox.since(reader, p.account_id, request.headers.get("Last-Event-ID"))
            missed = [_frame(inbox.item(n, lang, session=reader, settings=settings)) for n in catch_up.items]
            caught_up = {n.id for n in catch_up.items}
            if catch_up.resync_to is not None:  # more missed than a stream replays
                missed = [_resync(catch_up.resync_to, lang)]
            db.session.remove()
        except Exception:
            with _streams_lock:
                _streams["open"] -= 1
            raise
        stream = _LiveStream(_events(
            pubsub, missed, caught_up,
            heartbeat=float(cfg["NOTIFY_SSE_HEARTBEAT"]), lifetime=float(cfg["NOTIFY_SSE_MAX_SECONDS"]),
            expires_at=float(p.claims["exp"]),
            revoked=lambda: revocations.is_revoked(p.session_id, jti),
            ended=_session_ended(lang), lang=lang,
        ), pubsub)  # fmt: skip
        # Not stream_with_context: its wrapper never closes a body nobody started to read, and
        # the stream needs nothing from the request once it has been opened.
        resp = Response(stream, mimetype="text/event-stream")
        resp.headers["Cache-Control"] = "no-cache"
        resp.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        resp.precompressed = True  # type: ignore[attr-defined]  # never gzip a stream
        return resp


def _frame(item: dict) -> str:
    data = json.dumps(item, default=str, ensure_ascii=False)
    return f"id: {item['id']}\nevent: notification\ndata: {data}\n\n"


def _resync(newest_id: str, lang: str) -> str:
    """The frame telling a reconnecting app that it missed more than the stream replays: it
    reloads its inbox. Its `id:` is the newest notification's, so the app's Last-Event-ID moves
    past what the reload shows and a later reconnect does not ask again."""
    data = json.dumps(inbox.resync_event(lang), ensure_ascii=False)
    return f"id: {newest_id}\nevent: resync\ndata: {data}\n\n"


def _session_ended(lang: str) -> str:
    """The last event of a stream whose session was signed out. No `id:`: the app's
    Last-Event-ID stays that of the last notification it got, so after logging in again it
    reconnects with it and receives what it missed."""
    error = SessionRevoked()
    data = json.dumps({"code": error.code, "message": error.message(lang)}, ensure_ascii=False)
    return f"event: session_ended\ndata: {data}\n\n"


class _LiveStream:
    """A stream's body. Closing it frees its slot and its Redis subscription, once, whether or
    not it was ever read: a HEAD request, or a client gone before the first byte, closes a body
    nobody iterated, and closing a generator that never started does not run its `finally`. A
    body dropped without being closed (a hook failing after the view returned, so Flask answers
    500 instead) is put aside when it is collected, and the next stream request frees it: the
    collector may run in any thread at any allocation, even one holding `_streams_lock`, so it
    takes no lock and does no I/O itself."""

    def __init__(self, events: Iterator[str], pubsub: Any) -> None:
        self._events = events
        self._pubsub = pubsub
        self._dropped = weakref.finalize(self, _dropped.append, pubsub)
        self._dropped.atexit = False  # a worker shutting down has no slots left to count

    def __iter__(self) -> _LiveStream:
        return self

    def __next__(self) -> str:
        return next(self._events)

    def close(self) -> None:
        try:
            self._events.close()  # type: ignore[attr-defined]
        finally:
            if self._dropped.detach() is not None:  # once: not closed before, not collected
                _free_slot(self._pubsub)


# Subscriptions of stream bodies collected without being closed; freed by `free_dropped`.
_dropped: collections.deque[Any] = collections.deque()


def free_dropped() -> None:
    """Free the slots and subscriptions of stream bodies collected without being closed."""
    while True:
        try:
            pubsub = _dropped.popleft()
        except IndexError:
            return
        _free_slot(pubsub)


def _free_slot(pubsub: Any) -> None:
    with _streams_lock:
        _streams["open"] -= 1
    pubsub.close()


def _events(
    pubsub: object,
    missed: list[str],
    caught_up: set[str],
    *,
    heartbeat: float,
    lifetime: float,
    expires_at: float,
    revoked: Callable[[], bool],
    ended: str,
    lang: str,
) -> Iterator[str]:
    """The stream's frames. Before each notification and each heartbeat it asks Redis whether
    the session was revoked (one EXISTS, as every request does; an idle stream thus notices
    within a heartbeat): if so it sends `ended` and stops, delivering nothing more. It stops
    without a word once the access token expires (`expires_at`, project clock), as it does
    after `lifetime` seconds: the client reconnects and, like any request, refreshes its token
    first if it must. Ending, however it ends, is the generator returning: the body's `close`
    frees the slot and the subscription.

    The stream subscribes before it reads what was missed, so that nothing falls between the
    two; a notification committed in between is in both: its live copy (`caught_up` holds the
    ids read) is not sent again."""
    yield "retry: 3000\n\n"
    for frame in missed:
        if clock.timestamp() >= expires_at:
            return
        if revoked():
            yield ended
            return
        yield frame
    end = time.monotonic() + lifetime
    last = time.monotonic()
    while time.monotonic() < end and clock.timestamp() < expires_at and not lifecycle.draining():
        msg = pubsub.get_message(timeout=min(1.0, heartbeat))  # type: ignore[attr-defined]
        if msg and msg.get("type") == "message":
            if clock.timestamp() >= expires_at:
                return
            if revoked():
                yield ended
                return
            item = inbox.live_item(msg["data"], lang)
            if item["id"] in caught_up:
                caught_up.discard(item["id"])
                continue
            yield _frame(item)
            last = time.monotonic()
        elif time.monotonic() - last >= heartbeat:
            if revoked():
                yield ended
                return
            yield ": ping\n\n"
            last = time.monotonic()


_PREFERENCES = json_answer(
    "each event with each channel on or off",
    object_of(
        quiet_hours=BOOLEAN,
        events=array_of(object_of(
            event_type=STRING, label=STRING, sms_fallback=BOOLEAN,
            channels={"type": "object", "additionalProperties": BOOLEAN},
        )),
    ),
)  # fmt: skip


@prefs_blp.route("")
class Preferences(MethodView):
    @prefs_blp.doc(security=BEARER_SECURITY, responses={200: _PREFERENCES})
    def get(self) -> dict:
        """Each event type with each channel on or off, and whether quiet hours hold push and SMS."""
        p = current_principal()
        prefs = preferences.load(db.reader(), p.account_id)
        critical = set(services().notifications.settings.sms_fallback_events)
        return preferences.view(prefs, critical=critical, lang=language())

    @idempotent
    @prefs_blp.doc(security=BEARER_SECURITY, responses={200: _PREFERENCES})
    @prefs_blp.arguments(PreferencesSchema)
    def put(self, body: dict) -> dict:
        """Replace the choices. Channels: wechat, push, sms (the inbox is always on)."""
        if not whole_body().strip():
            # webargs reads no body as {}, which here means "every channel on": a save that lost
            # its body would undo every choice the citizen made. `{}` still resets on purpose.
            raise BadPreferences(fields={"_schema": [_BODY_REQUIRED]})
        p = current_principal()
        session = db.session()
        prefs = preferences.save(session, p.account_id, body)
        session.commit()
        critical = set(services().notifications.settings.sms_fallback_events)
        return preferences.view(prefs, critical=critical, lang=language())
