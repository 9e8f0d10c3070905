"""No new citizen data lands on a closed account (domain/closure/service.py).

A request that read the account as open and writes while the citizen closes it (a booking, a
complaint, a push token, a draft, a login's session) would otherwise add its row after the
closure erased everything: a closed account holding a live session or a future booking. Every
mapped class marked `refused_on_closed_account` is checked at the flush that inserts it: the
account row is taken FOR KEY SHARE (which waits for the closure's FOR UPDATE and then sees what
it committed; it does not conflict with ordinary updates of the account), and a closed or
missing account refuses the flush with AccountNotFound (404; the request's transaction is
rolled back, nothing written). SQLite ignores FOR SHARE: its one write lock is taken first
(core.db.take_write_lock). An account created in the same flush needs no check.

Changes of existing rows are not seen at flush (an operator may still move a closed account's
kept records): a citizen's change that could create a blocker or touch what the closure erases
calls `lock_for_change` first (an appeal of a rectification, ...).

Core inserts (the application submission, the booking statement, identity checks) are not seen
here: they guard themselves (the closure's application lock; the booking statement's own
condition; domain/identity/hotpath.lock_account).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session

from domain.accounts.errors import AccountNotFound
from domain.accounts.models import DELETED, Account

_ACCOUNTS = Account.__table__
_KEY_SHARE = (
    select(_ACCOUNTS.c.id, _ACCOUNTS.c.status)
    .where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    .with_for_update(read=True, key_share=True)
)
_SQLITE_WRITE_LOCK = (
    update(_ACCOUNTS).where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True))).values(id=_ACCOUNTS.c.id)
)


def ensure_open(session: Session, account_ids: set[str]) -> None:
    """Lock the accounts for a write of their data (see the module's docstring); AccountNotFound
    when any is closed or gone. Runs on the session's connection: no autoflush."""
    conn = session.connection()
    params = {"ids": sorted(account_ids)}
    if conn.dialect.name == "sqlite":
        conn.execute(_SQLITE_WRITE_LOCK, params)
    found = dict(conn.execute(_KEY_SHARE, params).tuples().all())
    if any(found.get(i) in (None, DELETED) for i in account_ids):
        raise AccountNotFound()


def lock_for_change(session: Session, account_id: str) -> None:
    """Before a citizen changes an existing row the closure judges (a blocker) or erases: lock
    the account as `ensure_open` does (AccountNotFound when closed). The closure holds the
    account FOR UPDATE from before it reads its blockers until it commits, so the change either
    commits first (and the closure sees it) or waits and is refused; never lands in between."""
    ensure_open(session, {account_id})


@event.listens_for(Session, "before_flush")
def _refuse_new_rows_of_closed_accounts(session: Session, _ctx: Any, _instances: Any) -> None:
    ids: set[str] = set()
    created: set[str] = set()
    for obj in session.new:
        if isinstance(obj, Account):
            if obj.id:
                created.add(obj.id)
        elif getattr(obj, "refused_on_closed_account", False):
            account_id = getattr(obj, "account_id", None)
            if account_id:
                ids.add(account_id)
    ids -= created
    if ids:
        ensure_open(session, ids)
