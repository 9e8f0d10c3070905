"""Stage events from the province: stored once, applied in the province's order, never backwards.

An event is keyed by its event_id (a repeat changes nothing) and numbered per case (`seq`).
Events apply strictly in seq order: one that arrives early waits for its predecessor, which a
late callback or reconciliation's status query brings. An event the case cannot follow any
more (e.g. the citizen withdrew) is recorded as ignored, with the reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import constraint_of, database_away, new_id, take_write_lock
from core.db_statements import first_row_autocommit
from core.errors import AppError, Text
from domain.applications import states, transitions
from domain.applications.models import Application
from domain.forwarding.errors import BadEvent, CallbackUnauthenticated, UnknownCase
from domain.forwarding.models import APPLIED, IGNORED, WAITING, ProvinceEvent, ProvinceNonce
from integrations.province.profile import Profile
from integrations.province.signing import NONCE_TTL

DUPLICATE = "duplicate"

log = logging.getLogger("yiwang.forwarding")

APPLY_BATCH = 100  # cases apply_pending moves in one transaction at most


def _text(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value is not None else None


def _holds_nul(value: Any) -> bool:
    stack = [value]
    while stack:  # bounded: request bodies nest at most api.json_body.MAX_DEPTH levels
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def validate(raw: Any) -> dict[str, Any]:
    """The event's fields, or BadEvent naming what is wrong."""
    if not isinstance(raw, dict):
        raise BadEvent(fields={"body": [Text("JSON object expected", "应为 JSON 对象")]})
    problems: dict[str, list[str]] = {}
    for key, limit in (("event_id", 64), ("sblsh", 48), ("stage", 24)):
        value = raw.get(key)
        if not isinstance(value, str) or not value or len(value) > limit:
            problems[key] = [Text(f"a string of 1-{limit} characters", f"应为 1-{limit} 个字符的字符串")]
    seq = raw.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= 1_000_000:
        problems["seq"] = [Text("an integer from 1", "应为不小于 1 的整数")]
    for key in ("materials", "fields"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            problems[key] = [Text("a list of strings", "应为字符串列表")]
    for key, value in raw.items():  # no database text column can hold a NUL character
        if _holds_nul(key) or _holds_nul(value):
            problems.setdefault(str(key).replace("\x00", "\\u0000"), []).append(
                Text("text without NUL characters", "文本不能包含 NUL 字符")
            )
    if problems:
        raise BadEvent(fields=problems)
    return raw


STORED = "stored"


def store(
    session: Session, profile: Profile, raw: Any, *, source: str = "callback", nonce: str | None = None
) -> str:
    """Keep one event for the applier; returns stored or duplicate. Commits.

    With `nonce` (a callback's), the nonce is recorded in the same statement and the event kept
    only if the nonce is new; a nonce seen before raises CallbackUnauthenticated (a replay), so
    a nonce is used up exactly when its request is answered. One statement in the common case:
    the insert picks the case by its number and skips an event id or seq already kept (every
    applied seq stays kept, so a late, older event is a duplicate too). On PostgreSQL it runs
    precompiled in autocommit: one round trip, durable when it returns. The province gets its
    answer without waiting for the case to move; the forwarder's applier (apply_pending) moves
    it within moments.
    """
    event = validate(raw)
    values = {
        "id": new_id(), "profile": profile.name, "event_id": event["event_id"], "seq": event["seq"],
        "stage": event["stage"], "payload": event, "source": source, "received_at": clock.now(),
        "state": WAITING, "sblsh": event["sblsh"],
    }  # fmt: skip
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        params = values | {"payload": json.dumps(event)}
        if nonce is None:
            stored = first_row_autocommit(session, _insert(dialect), params)
        else:
            nonce_new, stored_id = first_row_autocommit(
                session, _insert_with_nonce(), params | {"nonce": nonce}
            )
            if not nonce_new:
                raise CallbackUnauthenticated(reason="replayed_nonce")
            stored = stored_id
    else:
        if nonce is not None and not _record_nonce(session, profile, nonce, values["received_at"]):
            session.rollback()
            raise CallbackUnauthenticated(reason="replayed_nonce")
        stored = session.execute(_insert(dialect), values).first()
        if stored is None and nonce is not None:
            session.commit()  # the nonce is used up all the same
    if stored is None:
        session.rollback()
        exists_ = session.scalar(select(Application.id).where(Application.case_number == event["sblsh"]))
        session.rollback()
        if exists_ is None:
            raise UnknownCase()
        return DUPLICATE
    if session.in_transaction():  # not after an autocommit statement: nothing to end
        session.commit()
    return STORED


def _record_nonce(session: Session, profile: Profile, nonce: str, at: datetime) -> bool:
    """SQLite: record a nonce in the caller's transaction; False if it was there already."""
    done = session.execute(
        sqlite_insert(ProvinceNonce)
        .values(profile=profile.name, nonce=nonce, seen_at=at)
        .on_conflict_do_nothing()
    )
    return done.rowcount == 1


# The sweeper's clock may run ahead of the API hosts' that recorded the nonces (and judge the
# timestamps): kept this much longer, a replay cannot slip into the difference.
NONCE_CLOCK_SKEW = 120


def purge_nonces(session: Session, now: datetime) -> int:
    """Forget nonces whose timestamps can no longer pass on any host; commits. How many went."""
    done = session.execute(
        delete(ProvinceNonce).where(
            ProvinceNonce.seen_at < now - timedelta(seconds=NONCE_TTL + NONCE_CLOCK_SKEW)
        )
    )
    session.commit()
    return int(done.rowcount or 0)


_EVENT_COLUMNS = ("id", "profile", "event_id", "seq", "stage", "payload", "source", "received_at", "state")


def _event_source() -> Any:
    """The event's row from the bound parameters and its case (none if the case is unknown)."""
    T = ProvinceEvent.__table__
    case_number = bindparam("sblsh", type_=Application.case_number.type)
    return select(
        *(bindparam(c, type_=T.c[c].type).label(c) for c in _EVENT_COLUMNS),
        Application.id.label("application_id"),
    ).where(Application.case_number == case_number)


@functools.cache
def _insert(dialect_name: str) -> Any:
    """store's statement with bound parameters, built once per dialect."""
    T = ProvinceEvent.__table__
    insert = pg_insert if dialect_name == "postgresql" else sqlite_insert
    return (
        insert(T)
        .from_select([*_EVENT_COLUMNS, "application_id"], _event_source())
        .on_conflict_do_nothing()
        .returning(T.c.id)
    )


@functools.cache
def _insert_with_nonce() -> Any:
    """PostgreSQL: record the nonce and keep the event only if the nonce was new, in one
    statement; returns (nonce was new: 0/1, the kept event's id or NULL)."""
    N, T = ProvinceNonce.__table__, ProvinceEvent.__table__
    fresh = (
        pg_insert(N)
        .values(
            profile=bindparam("profile", type_=N.c.profile.type),
            nonce=bindparam("nonce", type_=N.c.nonce.type),
            seen_at=bindparam("received_at", type_=N.c.seen_at.type),
        )
        .on_conflict_do_nothing()
        .returning(N.c.nonce)
        .cte("fresh_nonce")
    )
    kept = (
        pg_insert(T)
        .from_select(
            [*_EVENT_COLUMNS, "application_id"], _event_source().where(exists(select(fresh.c.nonce)))
        )
        .on_conflict_do_nothing()
        .returning(T.c.id)
        .cte("kept_event")
    )
    return select(
        select(func.count()).select_from(fresh).scalar_subquery().label("nonce_new"),
        select(kept.c.id).scalar_subquery().label("kept_id"),
    )


def apply_pending(session: Session, profile: Profile, *, limit: int = APPLY_BATCH) -> int:
    """Apply kept events that are next in their case's order; returns how many moved. Safe to
    run in several processes at once (a case locked by another is skipped, and found again
    next time). The cases found go in one transaction; if that fails, one transaction each."""
    nxt = (
        select(ProvinceEvent.application_id)
        .join(Application, Application.id == ProvinceEvent.application_id)
        .where(ProvinceEvent.state == WAITING, ProvinceEvent.seq == Application.province_seq + 1)
        # Newest first: an event that fails every time stays waiting (and alerts); were the
        # oldest taken first, `limit` such cases would hold up every case after them for good.
        .order_by(ProvinceEvent.received_at.desc())
        .limit(limit)
    )
    app_ids = sorted(set(session.scalars(nxt)))
    session.rollback()
    if not app_ids:
        return 0
    try:
        total = _apply_cases(session, profile, app_ids)
        session.commit()
        return total
    except Exception:
        log.warning("applying a batch of stage events failed; one case at a time", exc_info=True)
        session.rollback()
    total = 0
    for app_id in app_ids:
        try:
            total += _apply_cases(session, profile, [app_id])
            session.commit()
        except Exception as exc:
            session.rollback()
            if database_away(exc):
                raise  # not this case's fault: the caller logs it once, and every case waits
            # One case's event that cannot be applied must not hold up the cases after it: it
            # stays waiting (found again next time) and is reported until someone looks at it.
            log.error(
                "a stage event could not be applied",
                exc_info=True,
                extra={"alert": "forwarding.event_apply_failed", "application_id": app_id},
            )
    return total


def _apply_cases(session: Session, profile: Profile, app_ids: list[str]) -> int:
    take_write_lock(session, Application.__table__, Application.id.in_(app_ids))
    stmt = (
        select(Application)
        .where(Application.id.in_(app_ids))
        .order_by(Application.id)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)  # another applier has it: skip
    apps = list(session.scalars(stmt))
    waiting: dict[str, dict[int, ProvinceEvent]] = {a.id: {} for a in apps}
    for event in session.scalars(
        select(ProvinceEvent).where(
            ProvinceEvent.application_id.in_([a.id for a in apps]), ProvinceEvent.state == WAITING
        )
    ):
        waiting[event.application_id][event.seq] = event
    return sum(apply_ready(session, profile, app, waiting[app.id]) for app in apps)


_EVENT_UNIQUES = ("uq_province_events_profile_event_id", "uq_province_events_application_id_seq")


def receive(session: Session, profile: Profile, raw: Any, *, source: str = "callback") -> str:
    """Store one event and apply whatever is now in order; returns applied / waiting / ignored /
    duplicate for this event. Commits."""
    event = validate(raw)
    take_write_lock(session, Application.__table__, Application.case_number == event["sblsh"])
    app = session.scalar(
        select(Application)
        .where(Application.case_number == event["sblsh"])
        .with_for_update()
        .execution_options(populate_existing=True)  # the locked row, not a copy from earlier
    )
    if app is None:
        session.rollback()
        raise UnknownCase()
    seen = session.scalar(
        select(ProvinceEvent.id).where(
            ProvinceEvent.application_id == app.id,
            (ProvinceEvent.event_id == event["event_id"]) | (ProvinceEvent.seq == event["seq"]),
        )
    )
    if seen is not None or event["seq"] <= app.province_seq:
        session.rollback()
        return DUPLICATE
    row = ProvinceEvent(
        profile=profile.name, event_id=event["event_id"], application_id=app.id, seq=event["seq"],
        stage=event["stage"], payload=event, source=source, received_at=clock.now(), state=WAITING,
    )  # fmt: skip
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        # The same event id on another case (the province's mistake) is a duplicate; any other
        # failure must reach the province as an error, so that it sends the event again.
        if constraint_of(exc) not in _EVENT_UNIQUES:
            raise
        session.rollback()
        return DUPLICATE
    apply_ready(session, profile, app)
    state = row.state
    session.commit()
    return state


def apply_ready(
    session: Session, profile: Profile, app: Application, waiting: dict[int, ProvinceEvent] | None = None
) -> int:
    """Apply the stored events that are next in order; the caller holds the case's row lock.
    `waiting`: the case's waiting events by seq, if the caller has read them."""
    if waiting is None:
        waiting = {
            e.seq: e
            for e in session.scalars(
                select(ProvinceEvent).where(
                    ProvinceEvent.application_id == app.id, ProvinceEvent.state == WAITING
                )
            )
        }
    applied = 0
    while (event := waiting.pop(app.province_seq + 1, None)) is not None:
        now = clock.now()
        outcome = _apply(session, profile, app, event, now)
        event.state = APPLIED if outcome is None else IGNORED
        event.outcome = outcome[:200] if outcome else outcome  # may quote the province's values
        event.applied_at = now
        app.province_seq = event.seq
        applied += 1
    return applied


def external_id(profile: Profile, event_id: str) -> str:
    """The timeline's key for a province event (fits the 64-character column)."""
    key = f"{profile.name}:{event_id}"
    return (
        key if len(key) <= 64 else f"{profile.name[:16]}:{hashlib.sha256(event_id.encode()).hexdigest()[:40]}"
    )


def _occurred(payload: dict[str, Any], app: Application, now: datetime) -> datetime | None:
    """When the event happened at the province (`occurred_at`, with its offset), for the due-date
    clock and the timeline: an event applied late (after a gap, or across midnight) counts from
    then. None (now) when it is missing or unreadable; never before the submission nor after now."""
    raw = payload.get("occurred_at")
    try:
        at = datetime.fromisoformat(raw) if isinstance(raw, str) and len(raw) <= 40 else None
    except ValueError:
        return None
    if at is None or at.tzinfo is None:
        return None
    floor = app.submitted_at
    return min(max(at, floor), now) if floor is not None else min(at, now)


def _apply(
    session: Session, profile: Profile, app: Application, event: ProvinceEvent, now: datetime
) -> str | None:
    """Make the case follow one event; None when it moved, else why it did not."""
    p = event.payload
    target = profile.status_for(event.stage, _text(p.get("code"), 8))
    if target is None:
        return f"unmapped stage {event.stage}/{p.get('code')}"
    if target == states.RECEIVED:
        version = p.get("version")
        if version == app.submission_version and p.get("receipt_no"):
            app.province_receipt_no = _text(p["receipt_no"], 64)
            app.province_received_at = app.province_received_at or now
    if target == app.status:
        return "already in this state"
    if not states.allowed(app.status, target, states.HANDLER, accepted=app.clock_started_on is not None):
        return f"not a move from {app.status}"
    try:
        # apply() checks everything before it changes anything, so a refusal leaves no trace.
        transitions.apply(
            session, app, target, actor_type="province", actor_id=profile.name,
            note=_text(p.get("reason"), 1000), fields=p.get("fields"), materials=p.get("materials"),
            result=profile.result_for(_text(p.get("result_code"), 4)),
            external_id=external_id(profile, event.event_id), at=_occurred(p, app, now),
        )  # fmt: skip
    except AppError as exc:
        return f"refused: {exc.code}"
    return None
