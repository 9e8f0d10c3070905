"""Finding, creating and merging accounts from channel identities."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import Encryptor, LookupHasher
from core.db import take_write_lock
from core.masking import mask_phone
from domain.accounts import merge, open_guard
from domain.accounts.errors import AccountLocked, AccountNotFound, PhoneBoundElsewhere
from domain.accounts.models import (
    ACTIVE,
    DELETED,
    LOCKED,
    PHONE,
    PHONE_ISSUER,
    UNIONID_ISSUER,
    WECHAT_OPENID,
    WECHAT_UNIONID,
    Account,
    ChannelIdentity,
)
from domain.accounts.profile_cache import ProfileCache

log = logging.getLogger(__name__)

PHONE_PURPOSE = "phone"
SESSION_KEY_PURPOSE = "wechat-session-key"


def _identity(
    session: Session, kind: str, issuer: str, lookup: str, *, fresh: bool = False
) -> ChannelIdentity | None:
    """The channel identity with this lookup; `fresh`: as committed now, not a copy the session
    held (read again under a lock)."""
    stmt = select(ChannelIdentity).where(
        ChannelIdentity.kind == kind,
        ChannelIdentity.issuer == issuer,
        ChannelIdentity.lookup == lookup,
    )
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return session.scalar(stmt)


def _new_account(session: Session, created_via: str) -> Account:
    now = clock.now()
    account = Account(
        status=ACTIVE, identity_level="L1", created_at=now, updated_at=now, created_via=created_via
    )
    session.add(account)
    session.flush()
    return account


def _attach(session: Session, account: Account, **fields: object) -> ChannelIdentity:
    ident = ChannelIdentity(account_id=account.id, created_at=clock.now(), last_used_at=clock.now(), **fields)
    session.add(ident)
    session.flush()
    return ident


def ensure_usable(account: Account) -> None:
    """Raise unless the account may log in."""
    if account.status == LOCKED:
        raise AccountLocked()
    if account.status == DELETED:
        raise AccountNotFound()


def get_account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None or account.status == DELETED:
        raise AccountNotFound()
    return account


@dataclass
class WechatLogin:
    account: Account
    created: bool


def login_wechat(
    session: Session,
    *,
    encryptor: Encryptor,
    appid: str,
    openid: str,
    unionid: str | None,
    session_key: str,
) -> WechatLogin:
    """Find the account by unionid, else openid (by openid when the two lead to different
    accounts); create it on first login. Not committed."""
    now = clock.now()
    by_union = _identity(session, WECHAT_UNIONID, UNIONID_ISSUER, unionid) if unionid else None
    by_open = _identity(session, WECHAT_OPENID, appid, openid)
    created = False
    split = by_union is not None and by_open is not None and by_union.account_id != by_open.account_id
    if split:
        # Two accounts for one WeChat user (this mini-program's openid on one, the unionid another
        # mini-program brought on the other): the openid's account, whose identity this
        # mini-program issued and which holds its session key (WeChat face, phone binding);
        # an operator should merge them.
        log.warning(
            "wechat unionid and openid lead to different accounts",
            extra={"appid": appid, "alert": "accounts.wechat_split"},
        )
        account = by_open.account  # type: ignore[union-attr]
    elif by_union is not None:
        account = by_union.account
    elif by_open is not None:
        account = by_open.account
    else:
        account = _new_account(session, "miniprogram")
        created = True
    ensure_usable(account)
    if by_open is None:
        by_open = _attach(session, account, kind=WECHAT_OPENID, issuer=appid, lookup=openid)
    if unionid and by_union is None:
        _attach(session, account, kind=WECHAT_UNIONID, issuer=UNIONID_ISSUER, lookup=unionid)
    by_open.session_key_enc = encryptor.encrypt(session_key, purpose=SESSION_KEY_PURPOSE)
    by_open.last_used_at = now
    return WechatLogin(account, created)


def phone_lookup(hasher: LookupHasher, phone: str) -> str:
    return hasher.hash(phone, purpose=PHONE_PURPOSE)


def find_by_phone(session: Session, *, hasher: LookupHasher, phone: str) -> Account | None:
    ident = _identity(session, PHONE, PHONE_ISSUER, phone_lookup(hasher, phone))
    return ident.account if ident else None


def hold_phone_account(session: Session, *, hasher: LookupHasher, phone: str) -> None:
    """Before a login by `phone` writes anything (its code consumed): hold the number's account
    FOR KEY SHARE, so a closure of it under way finishes first (its FOR UPDATE is waited for)
    instead of the two waiting on each other (the closure deletes the number's codes; the login
    would hold its code's row and then wait for the account). Closed meanwhile: the transaction
    is rolled back and the login goes on as the closure left things (its code gone)."""
    owner = select(ChannelIdentity.account_id).where(
        ChannelIdentity.kind == PHONE, ChannelIdentity.issuer == PHONE_ISSUER,
        ChannelIdentity.lookup == phone_lookup(hasher, phone),
    )  # fmt: skip
    account_id = session.scalar(owner)
    if account_id is None:
        return
    try:
        open_guard.ensure_open(session, {account_id})
    except AccountNotFound:
        session.rollback()


def login_phone(
    session: Session, *, encryptor: Encryptor, hasher: LookupHasher, phone: str
) -> tuple[Account, bool]:
    """Account for a verified phone number, created on first login. Not committed."""
    account = find_by_phone(session, hasher=hasher, phone=phone)
    if account is not None:
        ensure_usable(account)
        return account, False
    account = _new_account(session, "app")
    _attach(
        session,
        account,
        kind=PHONE,
        issuer=PHONE_ISSUER,
        lookup=phone_lookup(hasher, phone),
        value_enc=encryptor.encrypt(phone, purpose=PHONE_PURPOSE),
        value_masked=mask_phone(phone),
    )
    return account, True


@dataclass
class PhoneBinding:
    account: Account  # the account the caller should now be logged in to
    merged_from: str | None  # the account id folded into it, when a merge happened
    replaced: bool = False  # a new number took the place of the account's old one


def bind_phone(
    session: Session, *, encryptor: Encryptor, hasher: LookupHasher, account: Account, phone: str
) -> PhoneBinding:
    """Attach a carrier-verified phone to `account`.

    If the phone already belongs to another account, the person is the same: an account whose
    channel identities do not clash is merged into the phone's account when at most one of the
    two has proved an identity (domain/accounts/merge.py: everything it owns, that identity
    included, moves over and it is closed; the caller ends its sessions). Anything else is a
    conflict for a later, stronger check.

    The account is locked first (open_guard.lock_for_change): a bind racing its closure either
    commits first or is refused (404), so a number never stays on a closed account. When the
    number is another account's, both are locked instead, FOR UPDATE in id order (as every
    merge: domain/accounts/merge.py) and everything is judged on them as read under that lock: a
    shared lock taken first and raised at the merge deadlocked two binds of the same pair (a
    double tap), and checks made before the lock could fold into an account closed meanwhile.
    """
    lookup = phone_lookup(hasher, phone)
    seen = _identity(session, PHONE, PHONE_ISSUER, lookup)  # unlocked: whose the number is
    pair = {account.id} if seen is None else {account.id, seen.account_id}
    if len(pair) == 2:
        _lock_for_merge(session, pair)
        if account.status == DELETED:  # merged or closed while this waited (a double tap's second)
            raise AccountNotFound()
    else:
        open_guard.lock_for_change(session, account.id)
    existing = _identity(session, PHONE, PHONE_ISSUER, lookup, fresh=True)
    if existing is not None and existing.account_id not in pair:  # taken by a third meanwhile
        raise PhoneBoundElsewhere()
    if existing is not None and existing.account_id == account.id:
        return PhoneBinding(account, None)
    own_phone = session.scalar(
        select(ChannelIdentity).where(ChannelIdentity.account_id == account.id, ChannelIdentity.kind == PHONE)
    )
    if existing is None:
        if own_phone is not None:  # a new number replaces the old one
            own_phone.lookup = lookup
            own_phone.value_enc = encryptor.encrypt(phone, purpose=PHONE_PURPOSE)
            own_phone.value_masked = mask_phone(phone)
            own_phone.last_used_at = clock.now()
        else:
            _attach(
                session, account, kind=PHONE, issuer=PHONE_ISSUER, lookup=lookup,
                value_enc=encryptor.encrypt(phone, purpose=PHONE_PURPOSE),
                value_masked=mask_phone(phone),
            )  # fmt: skip
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent bind won the number
            raise PhoneBoundElsewhere() from exc
        return PhoneBinding(account, None, replaced=own_phone is not None)
    target = existing.account
    ensure_usable(target)
    # At most one of the two may hold a verified identity (it then moves with the merge): two
    # would be two people, or one person proved twice, for a stronger check to settle.
    verified = account.identity_level not in ("L0", "L1")
    if (verified and target.identity_level not in ("L0", "L1")) or not merge.can_merge(
        session, source=account, target=target
    ):
        raise PhoneBoundElsewhere()
    merge.fold_into(session, source=account, target=target, actor_id=account.id, reason="same verified phone")
    if verified:  # the identity came along (it follows the person): so do its level and face time
        target.identity_level, target.live_checked_at = account.identity_level, account.live_checked_at
    return PhoneBinding(target, account.id)


def _lock_for_merge(session: Session, account_ids: set[str]) -> None:
    """Both accounts FOR UPDATE in id order and read afresh (the objects the session holds are
    refreshed); AccountNotFound when either is gone (a closed or merged one is judged later)."""
    take_write_lock(session, Account.__table__, Account.id.in_(sorted(account_ids)))
    rows = session.scalars(
        select(Account).where(Account.id.in_(sorted(account_ids))).order_by(Account.id).with_for_update()
        .execution_options(populate_existing=True)
    ).all()  # fmt: skip
    if len(rows) != len(account_ids):
        raise AccountNotFound()


def full_phone(
    session: Session,
    *,
    encryptor: Encryptor,
    account_id: str,
    actor_id: str,
    request_id: str | None,
    actor_type: str = "citizen",
) -> str | None:
    """Decrypt the account's phone number; every such read is audited."""
    ident = session.scalar(
        select(ChannelIdentity).where(ChannelIdentity.account_id == account_id, ChannelIdentity.kind == PHONE)
    )
    if ident is None or ident.value_enc is None:
        return None
    audit.record(
        session, actor_type=actor_type, actor_id=actor_id, action="pii.read",
        target_type="account", target_id=account_id, request_id=request_id,
        details={"field": "phone"},
    )  # fmt: skip
    return encryptor.decrypt(ident.value_enc, purpose=PHONE_PURPOSE)


@dataclass(frozen=True)
class Profile:
    """What the owner sees of an account: channel identifiers left out, the phone masked."""

    id: str
    status: str
    identity_level: str
    created_at: datetime
    masked_phone: str | None
    channels: dict[str, bool]


# Built once: GET /v1/me runs this on every call, and building and cache-keying a select costs
# about as much CPU as executing it. Core rows (no ORM objects): nothing here is modified.
_PROFILE_QUERY = (
    select(
        Account.status, Account.identity_level, Account.created_at,
        ChannelIdentity.kind, ChannelIdentity.value_masked,
    )
    .outerjoin(ChannelIdentity, ChannelIdentity.account_id == Account.id)
    .where(Account.id == bindparam("account_id"))
)  # fmt: skip


def profile(session: Session, account_id: str, *, cache: ProfileCache | None = None) -> Profile:
    """The account with its masked phone and bound channels (GET /v1/me).

    One query, or none when `cache` holds it; the cache is dropped after any committed change
    to the account or its identities (domain/accounts/profile_cache.py).
    """
    data = cache.get(account_id) if cache is not None else None
    if data is None:
        rows = session.connection().execute(_PROFILE_QUERY, {"account_id": account_id}).all()
        if not rows:
            raise AccountNotFound()
        kinds = {row.kind for row in rows}
        first = rows[0]
        data = {
            "status": first.status,
            "identity_level": first.identity_level,
            "created_at": first.created_at,
            "masked_phone": next((row.value_masked for row in rows if row.kind == PHONE), None),
            "channels": {"wechat": WECHAT_OPENID in kinds, "phone": PHONE in kinds},
        }
        if cache is not None:
            cache.put(account_id, data)
    if data["status"] == DELETED:
        raise AccountNotFound()
    return Profile(id=account_id, **data)


def set_status(session: Session, *, account_id: str, status: str, actor_id: str, reason: str) -> Account:
    """Lock, unlock or delete an account (operator action). Not committed.

    The caller must also end the account's sessions when locking or deleting
    (domain.auth.sessions.revoke_all, in the same transaction), so existing access tokens stop at
    once: the citizen's own and those of the apps they authorised (a deleted account's app grants
    end too; a locked one keeps them, docs/oauth.md).
    """
    if status not in (ACTIVE, LOCKED, DELETED):
        raise ValueError(f"unknown account status {status!r}")
    account = session.get(Account, account_id)
    if account is None or account.status == DELETED:
        raise AccountNotFound()
    previous, account.status, account.updated_at = account.status, status, clock.now()
    audit.record(
        session,
        actor_type="operator",
        actor_id=actor_id,
        action="account.status_changed",
        target_type="account",
        target_id=account_id,
        details={"from": previous, "to": status, "reason": reason[:200]},
    )
    return account
