"""Real-name verification: start with a provider, complete by asking it, bind the identity.

The client's word is never trusted: `complete` asks the provider for the result. Names and ID
numbers are validated before any paid call, counted against per-account and per-IP limits,
encrypted at rest and erased from an attempt once it has finished.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core import audit, clock
from core.crypto import Encryptor
from core.db import new_id
from core.ratelimit import RateLimiter
from domain.accounts.models import WECHAT_OPENID, Account, ChannelIdentity
from domain.accounts.service import ensure_usable, get_account
from domain.auth.sessions import reissue_access
from domain.identity import documents
from domain.identity.binding import (
    audit_finish,
    bind_or_refuse,
    check_can_take,
    commit,
    finish,
    finished_values,
    id_lookup,
    identity_of,
    person_from,
)
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE, REF_PURPOSE, IdentityDeps, Outcome
from domain.identity.errors import (
    AlreadyVerified,
    ConsentOutdated,
    ConsentRequired,
    MethodUnavailable,
    ProviderFailedError,
    ProviderUnavailableError,
    VerificationFinished,
    VerificationNotFound,
)
from domain.identity.models import (
    CONSENT_FACE,
    EXPIRED,
    FACE_METHODS,
    FAILED,
    ID_CHECK,
    PASSED,
    PENDING,
    ConsentRecord,
    IdentityVerification,
)
from integrations.realname.base import (
    REASON_EXPIRED,
    FaceProvider,
    IdCheckProvider,
    IdentityRefused,
    Person,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)

log = logging.getLogger(__name__)


class _Quota:
    """Rate-limit hits that can be given back if the provider was never really used."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._taken: list[tuple[str, str, str]] = []

    def take(self, name: str, ident: str, *, limit: int, window: int) -> None:
        try:
            member = self._limiter.hit(name, ident, limit=limit, window=window)
        except Exception:
            self.give_back()
            raise
        self._taken.append((name, ident, member))

    def give_back(self) -> None:
        for name, ident, member in self._taken:
            self._limiter.undo(name, ident, member)
        self._taken.clear()


def _provider_call(quota: _Quota, method: str, call: Any) -> Any:
    try:
        return call()
    except ProviderUnavailable as exc:
        quota.give_back()
        log.warning("identity provider unavailable", extra={"method": method, "provider_code": exc.code})
        raise ProviderUnavailableError(details={"method": method}) from exc
    except ProviderFailed as exc:
        quota.give_back()
        log.error("identity provider failed", extra={"method": method, "provider_code": exc.code})
        raise ProviderFailedError(details={"method": method}) from exc


def _openid(session: Session, account_id: str, appid: str) -> str | None:
    return session.scalar(
        select(ChannelIdentity.lookup).where(
            ChannelIdentity.account_id == account_id,
            ChannelIdentity.kind == WECHAT_OPENID,
            ChannelIdentity.issuer == appid,
        )
    )


def start(
    session: Session,
    *,
    deps: IdentityDeps,
    account_id: str,
    channel: str,
    method: str,
    name: str,
    id_number: str,
    consent: Mapping[str, Any] | None,
    ip: str | None,
    request_id: str | None,
    session_id: str | None = None,
) -> Outcome:
    """Begin a verification. Face methods return what the phone's SDK needs; an ID check
    finishes at once (and, when it passes, the caller's login session `session_id` gets a new
    access token with the level). Nothing is written when validation, a limit or the provider
    fails."""
    policy = deps.policy
    offered = policy.methods(channel)
    if method not in offered:
        raise MethodUnavailable(details={"methods": list(offered)})
    is_face = method in FACE_METHODS
    if is_face:
        if not consent or consent.get("accepted") is not True:
            raise ConsentRequired(details={"text_version": policy.consent_version})
        if consent.get("text_version") != policy.consent_version:
            raise ConsentOutdated(details={"text_version": policy.consent_version})
    person = person_from(name, id_number)
    lookup = id_lookup(deps.hasher, person.id_number)
    account = get_account(session, account_id)
    ensure_usable(account)
    level = account.identity_level  # unchanged unless a check passes below
    # Only a live (face) proof may fold this account into one already holding the identity.
    own = check_can_take(session, account, lookup, may_merge=is_face)
    if method == ID_CHECK and own is not None:
        raise AlreadyVerified()
    openid = _openid(session, account_id, policy.wechat_appid) if method == "wechat_face" else None
    session.rollback()  # no transaction stays open across the provider call

    quota = _Quota(deps.ratelimiter)
    if is_face:
        quota.take("face_account", account_id, limit=policy.face_per_account_per_day, window=86400)
        quota.take("face_ip", ip or "-", limit=policy.face_per_ip_per_hour, window=3600)
    else:
        quota.take("idcheck_account", account_id, limit=policy.idcheck_per_account_per_day, window=86400)

    out_ref = uuid.uuid4().hex
    provider = deps.providers[method]
    now = clock.now()
    row = IdentityVerification(
        account_id=account_id, method=method, channel=channel, status=PENDING, out_ref=out_ref,
        id_lookup=lookup, name_masked=documents.mask_name(person.name),
        id_number_masked=documents.mask_id_number(person.id_number), created_at=now,
    )  # fmt: skip
    if not is_face:
        checker: IdCheckProvider = provider
        result = _provider_call(quota, method, lambda: checker.check(person, out_ref=out_ref))
        row.expires_at = now
        row.provider_request_id = (result.provider_request_id or "")[:64] or None
        row.provider_code = result.provider_code
        session.add(row)
        if not result.matched:
            finish(row, FAILED, result.reason)
            audit_finish(session, row, request_id)
            commit(session)
            return Outcome(row, account_id, identity_level=level)
        finish(row, PASSED, None)
        bound = bind_or_refuse(session, row, request_id, deps=deps, account_id=account_id,
                               person=person, lookup=lookup, level="L2", method=method,
                               live=False, may_merge=False)  # fmt: skip
        return _passed(session, deps, row, bound, account_id, session_id, request_id)

    face: FaceProvider = provider
    ctx = StartContext(out_ref=out_ref, openid=openid, return_url=policy.return_url)
    refusal: str | None = None
    try:
        started = _provider_call(quota, method, lambda: face.start(person, ctx))
    except IdentityRefused as refused:  # the provider's final word already: record it
        started, refusal = None, refused.reason
        row.provider_code = refused.code[:64]
    consent_row = ConsentRecord(
        id=new_id(), account_id=account_id, purpose=CONSENT_FACE, text_version=policy.consent_version,
        channel=channel, given_at=now, ip=ip, request_id=request_id,
    )  # fmt: skip
    session.add(consent_row)
    row.consent_id = consent_row.id
    if started is None:
        row.expires_at = now
        session.add(row)
        finish(row, FAILED, refusal)
        audit_finish(session, row, request_id)
        commit(session)
        return Outcome(row, account_id, identity_level=level)
    row.expires_at = now + timedelta(seconds=max(int(started.expires_in), 1))
    row.name_enc = deps.encryptor.encrypt(person.name, purpose=NAME_PURPOSE)
    row.id_number_enc = deps.encryptor.encrypt(person.id_number, purpose=ID_PURPOSE)
    row.provider_ref_enc = deps.encryptor.encrypt(started.provider_ref, purpose=REF_PURPOSE)
    row.provider_request_id = (started.provider_request_id or "")[:64] or None
    session.add(row)
    commit(session)
    return Outcome(row, account_id, client_payload=dict(started.client_payload), identity_level=level)


def _passed(
    session: Session,
    deps: IdentityDeps,
    row: IdentityVerification,
    bound: Account,
    account_id: str,
    session_id: str | None,
    request_id: str | None,
) -> Outcome:
    """Record a verification that raised (or refreshed) `bound`'s level and commit. The caller's
    new access token is minted before the commit from the rows in hand (discarded if the commit
    fails); after a merge the caller needs a session of the other account instead."""
    merged_from = account_id if bound.id != account_id else None
    if merged_from:
        row.account_id = bound.id
    audit_finish(session, row, request_id)
    access = None
    if merged_from is None and session_id is not None:
        access = reissue_access(session, tokens=deps.tokens, policy=deps.session_policy,
                                account_id=bound.id, session_id=session_id)  # fmt: skip
    level = bound.identity_level
    commit(session)
    return Outcome(row, bound.id, merged_from=merged_from, level_changed=True,
                   identity_level=level, access_token=access)  # fmt: skip


def complete(
    session: Session,
    *,
    deps: IdentityDeps,
    account_id: str,
    verification_id: str,
    request_id: str | None,
    session_id: str | None = None,
) -> Outcome:
    """Ask the provider for the result of a pending face verification and apply it.

    Pending at the provider → returned unchanged (status pending). Passed → the account reaches
    L3 now (merging per domain/identity/merge.py when another account holds the identity), and
    the caller's login session `session_id` gets a new access token carrying it.
    """
    row = session.get(IdentityVerification, verification_id)
    if row is None or row.account_id != account_id:
        raise VerificationNotFound()
    if row.status != PENDING or row.method not in FACE_METHODS:
        raise VerificationFinished(details={"status": row.status})
    if row.expires_at <= clock.now():
        finish(row, EXPIRED, REASON_EXPIRED)
        audit_finish(session, row, request_id)
        session.commit()
        return Outcome(row, account_id)
    assert row.name_enc and row.id_number_enc and row.provider_ref_enc
    person = Person(
        deps.encryptor.decrypt(row.name_enc, purpose=NAME_PURPOSE),
        deps.encryptor.decrypt(row.id_number_enc, purpose=ID_PURPOSE),
    )
    ref = deps.encryptor.decrypt(row.provider_ref_enc, purpose=REF_PURPOSE)
    openid = _openid(session, account_id, deps.policy.wechat_appid) if row.method == "wechat_face" else None
    ctx = StartContext(out_ref=row.out_ref, openid=openid, return_url=deps.policy.return_url)
    # No transaction stays open across the provider call; the row keeps what was read.
    session.expunge(row)
    session.rollback()
    provider: FaceProvider = deps.providers[row.method]
    result = _provider_call(_Quota(deps.ratelimiter), row.method, lambda: provider.result(person, ctx, ref))
    session.add(row)
    if result.pending:
        return Outcome(row, account_id)
    status = PASSED if result.passed else (EXPIRED if result.reason == REASON_EXPIRED else FAILED)
    values = finished_values(status, None if result.passed else result.reason)
    values |= {"score": result.score, "provider_code": (result.provider_code or "")[:64] or None}
    if result.provider_request_id:
        values["provider_request_id"] = result.provider_request_id[:64]
    # Of two concurrent completions exactly one applies the result (the one that still finds
    # the attempt pending); the others are told it has finished.
    claimed = session.execute(
        update(IdentityVerification)
        .where(IdentityVerification.id == row.id, IdentityVerification.status == PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        session.rollback()
        raise VerificationFinished(details={"status": "finished"})
    for key, value in values.items():
        set_committed_value(row, key, value)
    if not result.passed:
        audit_finish(session, row, request_id)
        commit(session)
        return Outcome(row, account_id)
    bound = bind_or_refuse(session, row, request_id, deps=deps, account_id=account_id, person=person,
                           lookup=row.id_lookup, level="L3", method=row.method, live=True,
                           may_merge=True)  # fmt: skip
    return _passed(session, deps, row, bound, account_id, session_id, request_id)


def get_verification(session: Session, *, account_id: str, verification_id: str) -> IdentityVerification:
    """One of the account's verifications."""
    row = session.get(IdentityVerification, verification_id)
    if row is None or row.account_id != account_id:
        raise VerificationNotFound()
    return row


def full_identity(
    session: Session,
    *,
    encryptor: Encryptor,
    account_id: str,
    purpose: str,
    ip: str | None,
    request_id: str | None,
) -> tuple[str, str] | None:
    """The owner's full name and ID number; every read is audited with its purpose."""
    own = identity_of(session, account_id)
    if own is None:
        return None
    audit.record(
        session, actor_type="citizen", actor_id=account_id, action="pii.read", target_type="account",
        target_id=account_id, ip=ip, request_id=request_id,
        details={"fields": ["name", "id_number"], "purpose": purpose},
    )  # fmt: skip
    session.commit()
    return (
        encryptor.decrypt(own.name_enc, purpose=NAME_PURPOSE),
        encryptor.decrypt(own.id_number_enc, purpose=ID_PURPOSE),
    )


def expire_abandoned(session: Session) -> int:
    """End pending verifications the citizen abandoned and erase their encrypted personal data.

    Run by the sweeper: a verification nobody completes must not keep a name and ID number
    beyond the provider's lifetime. Commits; returns how many ended.
    """
    now = clock.now()
    ended = session.execute(
        update(IdentityVerification)
        .where(IdentityVerification.status == PENDING, IdentityVerification.expires_at <= now)
        .values(status=EXPIRED, reason=REASON_EXPIRED, completed_at=now,
                name_enc=None, id_number_enc=None, provider_ref_enc=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    session.commit()
    return ended
