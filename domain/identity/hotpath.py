"""The statements of a verification's common path, in SQLAlchemy Core.

Start and complete run for every citizen who verifies; through the ORM they cost about twice
the CPU of these statements (docs/benchmarks.md). What they do is what domain/identity/binding.py
does for one case: the identity is the account's own, or free. Everything else (a holder
elsewhere, a merge) goes through binding.bind, which decides and locks with the ORM.

The account's state, its own identity, the identity's holder and the caller's login session
come back in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from core import clock
from core.db import new_id
from domain.accounts import profile_cache
from domain.accounts.errors import AccountLocked, AccountNotFound
from domain.accounts.models import DELETED, LOCKED, Account
from domain.auth.errors import SessionRevoked
from domain.auth.models import LoginSession
from domain.auth.sessions import access_token_for
from domain.identity.binding import Proof, identity_values, level_raised_event, live_time
from domain.identity.deps import IdentityDeps
from domain.identity.errors import DifferentPerson
from domain.identity.levels import higher
from domain.identity.models import IdentityVerification, VerifiedIdentity

_ACCOUNTS = Account.__table__
_IDENTITIES = VerifiedIdentity.__table__
_VERIFICATIONS = IdentityVerification.__table__

_STATE = (
    select(
        _ACCOUNTS.c.status, _ACCOUNTS.c.identity_level, _ACCOUNTS.c.live_checked_at,
        _IDENTITIES.c.id.label("vi_id"), _IDENTITIES.c.account_id.label("vi_account"),
        _IDENTITIES.c.id_lookup.label("vi_lookup"), _IDENTITIES.c.level.label("vi_level"),
        LoginSession.__table__.c.channel.label("ls_channel"),
        LoginSession.__table__.c.expires_at.label("ls_expires_at"),
        LoginSession.__table__.c.revoked_at.label("ls_revoked_at"),
    )
    .select_from(_ACCOUNTS)
    .outerjoin(_IDENTITIES, or_(_IDENTITIES.c.account_id == _ACCOUNTS.c.id,
                                _IDENTITIES.c.id_lookup == bindparam("lookup")))
    .outerjoin(LoginSession.__table__, and_(LoginSession.__table__.c.id == bindparam("session_id"),
                                            LoginSession.__table__.c.account_id == _ACCOUNTS.c.id))
    .where(_ACCOUNTS.c.id == bindparam("account_id"))
)  # fmt: skip

_VERIFICATION = select(_VERIFICATIONS).where(_VERIFICATIONS.c.id == bindparam("verification_id"))
_INSERT_VERIFICATION = insert(_VERIFICATIONS)
_INSERT_IDENTITY = insert(_IDENTITIES)

# UPDATE ... WHERE id = :id statements by (table, columns set, pending only), built once each: a
# statement object reused keeps SQLAlchemy from computing its cache key on every call.
_UPDATES: dict[tuple[str, tuple[str, ...], bool], Any] = {}


def _update_by_id(
    conn: Connection, table: Any, row_id: str, values: dict[str, Any], *, pending_only: bool = False
) -> int:
    """Run the UPDATE of one row by id (and status pending); the number of rows it changed."""
    key = (table.name, tuple(sorted(values)), pending_only)
    stmt = _UPDATES.get(key)
    if stmt is None:
        where = [table.c.id == bindparam("row_id")]
        if pending_only:
            where.append(table.c.status == "pending")
        stmt = update(table).where(*where).values({k: bindparam(f"v_{k}") for k in key[1]})
        _UPDATES[key] = stmt
    params = {"row_id": row_id} | {f"v_{k}": v for k, v in values.items()}
    return conn.execute(stmt, params).rowcount


@dataclass
class AccountState:
    """An account as a verification needs it."""

    account_id: str
    status: str
    level: str
    live_checked_at: datetime | None
    own_id: str | None  # the account's verified identity
    own_lookup: str | None
    own_level: str | None
    held_elsewhere: bool  # another account holds the identity being proved
    session_channel: str | None  # the caller's login session, when it is open
    session_expires_at: datetime | None
    session_revoked: bool

    def ensure_usable(self) -> None:
        if self.status == LOCKED:
            raise AccountLocked()
        if self.status == DELETED:
            raise AccountNotFound()


def account_state(
    conn: Connection, account_id: str, lookup: str, session_id: str | None = None, *, lock: bool = False
) -> AccountState:
    """One query; `lock` holds the account row until the transaction ends (PostgreSQL), taken
    first by a statement of its own. A locking read that joins the identities would, after
    waiting for the lock, re-check only the account row and return the identity rows as they
    were before the wait: a displacement committed meanwhile (the identity moved to another
    account by a face check there) went unseen, and this account was raised to L3 holding no
    identity at all. The read after the lock sees what the holder of the lock committed."""
    if lock:
        lock_account(conn, account_id)
    rows = conn.execute(
        _STATE, {"account_id": account_id, "lookup": lookup, "session_id": session_id or ""}
    ).all()
    if not rows:
        raise AccountNotFound()
    first = rows[0]
    own = next((r for r in rows if r.vi_account == account_id), None)
    return AccountState(
        account_id=account_id, status=first.status, level=first.identity_level,
        live_checked_at=first.live_checked_at,
        own_id=own.vi_id if own else None, own_lookup=own.vi_lookup if own else None,
        own_level=own.vi_level if own else None,
        held_elsewhere=any(r.vi_lookup == lookup and r.vi_account != account_id for r in rows),
        session_channel=first.ls_channel, session_expires_at=first.ls_expires_at,
        session_revoked=first.ls_revoked_at is not None,
    )  # fmt: skip


def read_verification(conn: Connection, verification_id: str) -> IdentityVerification | None:
    """The attempt as a transient object (not in any session): what was read, nothing more."""
    row = conn.execute(_VERIFICATION, {"verification_id": verification_id}).first()
    return IdentityVerification(**row._mapping) if row is not None else None


_LOCK_ACCOUNT = select(Account.status).where(Account.id == bindparam("account_id")).with_for_update()
_SQLITE_WRITE_LOCK = (
    update(_ACCOUNTS).where(_ACCOUNTS.c.id == bindparam("account_id")).values(id=_ACCOUNTS.c.id)
)


def lock_account(conn: Connection, account_id: str) -> None:
    """Hold the account row until the transaction ends, and refuse (AccountNotFound: the caller
    rolls back) when it is gone or closed: a verification finishing while the citizen closes the
    account waits for the closure and then writes nothing onto the tombstone (no verified
    identity, no blind index that would later refuse the person's ID number on a new account).

    Taken before a passed attempt is written in the same transaction as its binding. Writing
    the attempt first takes a key-share lock on the account (the attempt's foreign key), and two
    such transactions that then both asked for the account's row lock waited on each other (a
    deadlock, one answered 500). SQLite ignores FOR UPDATE: a no-op UPDATE takes its one write
    lock first (core.db.take_write_lock), so the read sees what a closure committed."""
    params = {"account_id": account_id}
    if conn.dialect.name == "sqlite":
        conn.execute(_SQLITE_WRITE_LOCK, params)
    status = conn.execute(_LOCK_ACCOUNT, params).scalar()
    if status is None or status == DELETED:
        raise AccountNotFound()


def insert_verification(conn: Connection, row: IdentityVerification) -> None:
    """Write a new attempt built as a transient object (its id set here when missing)."""
    if row.id is None:
        row.id = new_id()
    values = {c.key: getattr(row, c.key) for c in _VERIFICATIONS.columns}
    conn.execute(_INSERT_VERIFICATION, values)


def claim(conn: Connection, verification_id: str, values: dict[str, Any]) -> bool:
    """Apply a result to a still-pending attempt; False when another completion got there first."""
    return _update_by_id(conn, _VERIFICATIONS, verification_id, values, pending_only=True) == 1


def set_verification(conn: Connection, verification_id: str, values: dict[str, Any]) -> None:
    _update_by_id(conn, _VERIFICATIONS, verification_id, values)


def can_take_here(state: AccountState, lookup: str) -> bool:
    """Whether the common path applies: the identity is this account's own, or nobody's."""
    return not state.held_elsewhere and (state.own_lookup is None or state.own_lookup == lookup)


class IdentityMoved(Exception):
    """The account's identity row changed hands between the locking read and the update."""


def take(
    session: Session, state: AccountState, *, deps: IdentityDeps, proof: Proof
) -> tuple[str, datetime | None, list[dict[str, Any]]]:
    """binding.bind for the common path (`can_take_here`): the account's level and live-check
    time after, and the audit events to write. Raises IntegrityError when a concurrent
    verification bound the identity first, IdentityMoved when the account's own identity row is
    gone (the caller decides again through binding.bind in both cases)."""
    if state.own_lookup is not None and state.own_lookup != proof.lookup:
        raise DifferentPerson()
    conn = session.connection()
    now = clock.now()
    values = identity_values(deps, proof, now)
    if state.own_id is not None:
        values["level"] = higher(state.own_level or proof.level, proof.level)
        if _update_by_id(conn, _IDENTITIES, state.own_id, values) != 1:
            # The identity read moments ago is gone (moved to another account meanwhile): the
            # account would be raised on nothing. The caller decides through binding.bind.
            raise IdentityMoved()
    else:
        values |= {"id": new_id(), "account_id": state.account_id, "id_lookup": proof.lookup,
                   "level": proof.level, "verified_at": now}  # fmt: skip
        with session.begin_nested():  # a concurrent binding of this identity: IntegrityError
            session.connection().execute(_INSERT_IDENTITY, values)
    new_level = higher(state.level, proof.level)
    account_values: dict[str, Any] = {"identity_level": new_level, "updated_at": now}
    live_at = live_time(proof, now, state.live_checked_at) if proof.live else state.live_checked_at
    if proof.live:
        account_values["live_checked_at"] = live_at
    _update_by_id(conn, _ACCOUNTS, state.account_id, account_values)
    profile_cache.mark_changed(session, state.account_id)
    events = []
    if new_level != state.level:
        events.append(level_raised_event(state.account_id, state.level, new_level, proof.method))
    return new_level, live_at, events


def access_token(
    deps: IdentityDeps, state: AccountState, session_id: str, level: str, live_checked_at: datetime | None
) -> str:
    """A new access token of the caller's open session carrying the account's new level."""
    if state.session_channel is None or state.session_revoked:
        raise SessionRevoked()
    if state.session_expires_at is not None and state.session_expires_at <= clock.now():
        raise SessionRevoked()
    state.ensure_usable()
    return access_token_for(
        deps.tokens, deps.session_policy, account_id=state.account_id, session_id=session_id,
        channel=state.session_channel, identity_level=level, live_checked_at=live_checked_at,
    )  # fmt: skip
