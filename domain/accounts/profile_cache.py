"""Per-account views (GET /v1/me, GET /v1/identity, the first page of GET /v1/applications)
and per-application views (GET /v1/applications/{id}) cached in Redis, dropped after every
committed change.

Invalidation is driven by the ORM, not by each write path: any flushed change to an Account, a
ChannelIdentity or a row of a model marked `shown_in_account_views = True` (the verified
identity) marks its account; a flushed change to a row of a model whose
`shown_in_application_view` names the attribute holding an application id (the application,
its materials, its shared-data records and grant) marks that application. The marks turn into
a Redis delete of every view of those accounts and applications once the transaction commits.
Writes that bypass the ORM (Core statements) mark what they change themselves (`mark_changed`,
`mark_application_changed`). During an @idempotent write (api/idempotency.py) the marks are
held and go to Redis with the stored response, in its round trip (`hold`), or on their own if
there is none. A delete leaves a short tombstone, so a reader that loaded the old
rows just before the commit cannot put them back (its write is `SET NX`).
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history

from core.redis import Batch
from domain.accounts.models import Account, ChannelIdentity

log = logging.getLogger(__name__)
_DIRTY = "profile_cache_dirty"
_DIRTY_APPS = "application_views_dirty"
_HELD = "profile_cache_held"
_TOMBSTONE = "-"
KINDS = ("profile", "identity", "applications")  # every cached view of an account, all dropped together
LANGUAGES = ("zh", "en")  # an application's view is cached once per language


class ProfileCache:
    """Redis store of serialised profiles; every failure degrades to a database read."""

    def __init__(self, redis: Redis, *, ttl: int = 300, tombstone_ttl: int = 5) -> None:
        self._redis = redis
        self._ttl = ttl
        self._tombstone_ttl = tombstone_ttl
        self._known: dict[str, bytes | None] = {}

    @staticmethod
    def key(account_id: str, kind: str = "profile") -> str:
        """The Redis key of one cached view (for callers that read it in a batch of their own)."""
        assert kind in KINDS
        return f"{kind}:{account_id}"

    @staticmethod
    def application_key(app_id: str, lang: str) -> str:
        """The Redis key of one application's cached view in one language."""
        assert lang in LANGUAGES
        return f"application:{app_id}:{lang}"

    def with_values(self, known: dict[str, bytes | None]) -> ProfileCache:
        """This cache, answering `get` for the keys in `known` from those values (read in the same
        round trip as the request's token check) instead of asking Redis again."""
        view = copy.copy(self)
        view._known = known
        return view

    def get_raw(self, account_id: str, *, kind: str) -> bytes | None:
        """The cached bytes of a view; None on a miss (or while Redis is away)."""
        return self.get_key(self.key(account_id, kind))

    def get_key(self, key: str) -> bytes | None:
        """The cached bytes under `key`; None on a miss (or while Redis is away)."""
        if key in self._known:
            raw = self._known[key]
        else:
            try:
                raw = self._redis.get(key)
            except RedisError:
                return None
        return None if raw is None or raw == _TOMBSTONE.encode() else raw

    def put_raw(self, account_id: str, raw: bytes, *, kind: str) -> None:
        """Cache a view's bytes, unless a change dropped it a moment ago (its tombstone)."""
        self.put_key(self.key(account_id, kind), raw)

    def put_key(self, key: str, raw: bytes) -> None:
        """Cache bytes under `key`, unless a change dropped them a moment ago (its tombstone)."""
        try:
            self._redis.set(key, raw, ex=self._ttl, nx=True)
        except RedisError:
            log.warning("profile cache write failed", extra={"kind": key.partition(":")[0]})

    def get(
        self, account_id: str, *, kind: str = "profile", dates: tuple[str, ...] = ("created_at",)
    ) -> dict[str, Any] | None:
        """The cached view, its `dates` (ISO strings in Redis) as datetimes; None on a miss."""
        raw = self.get_raw(account_id, kind=kind)
        if raw is None:
            return None
        data = json.loads(raw)
        for name in dates:
            if data.get(name) is not None:
                data[name] = datetime.fromisoformat(data[name])
        return data

    def put(
        self, account_id: str, data: dict[str, Any], *, kind: str = "profile",
        dates: tuple[str, ...] = ("created_at",),
    ) -> None:  # fmt: skip
        encoded = {k: (v.isoformat() if k in dates and v is not None else v) for k, v in data.items()}
        self.put_raw(account_id, json.dumps(encoded).encode(), kind=kind)

    def invalidate(self, account_ids: set[str], app_ids: set[str] | frozenset[str] = frozenset()) -> None:
        if not account_ids and not app_ids:
            return
        try:
            pipe = Batch(self._redis)
            self.stage_invalidation(pipe, account_ids, app_ids)
            pipe.execute()
        except RedisError:
            # The TTL bounds how long a stale view can live if Redis was briefly away.
            counts = {"accounts": len(account_ids), "apps": len(app_ids)}
            log.warning("profile cache invalidation failed", extra=counts)

    def stage_invalidation(
        self, pipe: Any, account_ids: set[str], app_ids: set[str] | frozenset[str]
    ) -> None:
        """`invalidate`'s commands, added to a pipeline another write sends."""
        keys = [self.key(a, kind) for a in account_ids for kind in KINDS]
        keys += [self.application_key(app_id, lang) for app_id in app_ids for lang in LANGUAGES]
        for key in keys:
            pipe.set(key, _TOMBSTONE, ex=self._tombstone_ttl)


class Held:
    """Invalidations a session's commits made while held (`hold`): added to the caller's own
    Redis write (`stage`, then `sent` once that write went through) or sent on their own
    (`send`); either way once."""

    def __init__(self) -> None:
        self.accounts: set[str] = set()
        self.apps: set[str] = set()

    def stage(self, pipe: Any) -> None:
        if _holder.cache is not None and (self.accounts or self.apps):
            _holder.cache.stage_invalidation(pipe, self.accounts, self.apps)

    def sent(self) -> None:
        self.accounts, self.apps = set(), set()

    def send(self) -> None:
        if _holder.cache is not None and (self.accounts or self.apps):
            _holder.cache.invalidate(self.accounts, self.apps)
        self.accounts, self.apps = set(), set()


def hold(session: Session) -> Held:
    """Collect the invalidations of this session's commits instead of sending each at once, for
    a caller that writes to Redis after the commit anyway (the idempotency record): one round
    trip. The caller must `release` and then stage or send what was held, also on errors."""
    held = Held()
    session.info[_HELD] = held
    return held


def release(session: Session) -> None:
    session.info.pop(_HELD, None)


class _Holder:
    cache: ProfileCache | None = None


_holder = _Holder()


def configure(cache: ProfileCache | None) -> None:
    """Install the process-wide cache (the app factory does this)."""
    _holder.cache = cache


def current() -> ProfileCache | None:
    return _holder.cache


def mark_changed(session: Session, account_id: str) -> None:
    """For writes that bypass the ORM (Core statements): drop the account's views after the commit."""
    session.info.setdefault(_DIRTY, set()).add(account_id)


def mark_application_changed(session: Session, *app_ids: str) -> None:
    """For writes that bypass the ORM: drop these applications' views after the commit."""
    session.info.setdefault(_DIRTY_APPS, set()).update(app_ids)


def _values(obj: Any, attr: str) -> list[Any]:
    # get_history, not inspect(obj).attrs: building `attrs` for a wide row costs more than the
    # rest of this listener.
    history = get_history(obj, attr, passive=PASSIVE_NO_INITIALIZE)
    return [v for v in (*history.added, *history.deleted, *history.unchanged) if v]


@event.listens_for(Session, "after_flush")
def _mark_changed_accounts(session: Session, _ctx: Any) -> None:
    dirty: set[str] = session.info.setdefault(_DIRTY, set())
    apps: set[str] | None = None
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Account):
            dirty.add(obj.id)
        elif isinstance(obj, ChannelIdentity) or getattr(obj, "shown_in_account_views", False):
            dirty.update(_values(obj, "account_id"))
        app_attr = getattr(obj, "shown_in_application_view", None)
        if app_attr:
            if apps is None:
                apps = session.info.setdefault(_DIRTY_APPS, set())
            apps.update(_values(obj, app_attr))


@event.listens_for(Session, "after_commit")
def _drop_after_commit(session: Session) -> None:
    ids = session.info.pop(_DIRTY, None)
    app_ids = session.info.pop(_DIRTY_APPS, None)
    held: Held | None = session.info.get(_HELD)
    if held is not None:
        held.accounts.update(ids or ())
        held.apps.update(app_ids or ())
    elif (ids or app_ids) and _holder.cache is not None:
        _holder.cache.invalidate(ids or set(), app_ids or frozenset())


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_DIRTY, None)
    session.info.pop(_DIRTY_APPS, None)
