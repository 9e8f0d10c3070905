"""Real-name verification: start with a provider, complete by asking it, bind the identity.

The client's word is never trusted: `complete` asks the provider for the result. Names and ID
numbers are validated before any paid call, counted against per-account, per-IP and
per-ID-number limits, encrypted at rest and erased from an attempt once it has finished.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import Encryptor
from core.db import new_id
from domain.accounts.errors import AccountNotFound
from domain.accounts.models import WECHAT_OPENID, Account, ChannelIdentity
from domain.accounts.service import get_account
from domain.auth.errors import SessionRevoked
from domain.auth.sessions import reissue_access
from domain.identity import documents, hotpath
from domain.identity.binding import (
    Proof,
    bind,
    check_can_take,
    commit,
    finish,
    finish_event,
    finished_values,
    id_lookup,
    identity_of,
    person_from,
    refusal_reason,
)
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE, REF_PURPOSE, IdentityDeps, Outcome
from domain.identity.errors import (
    AlreadyVerified,
    BoundToOtherAccount,
    ConsentOutdated,
    ConsentRequired,
    DifferentPerson,
    IdCheckInProgress,
    MethodUnavailable,
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
from domain.identity.provider_calls import Quota, provider_call
from integrations.realname.base import (
    REASON_EXPIRED,
    FaceProvider,
    IdCheckProvider,
    IdentityRefused,
    Person,
    StartContext,
)

ID_CHECK_CLAIM = "idcheck_in_flight"  # Redis key rl:idcheck_in_flight:<account id>
ID_NUMBER_QUOTA = "id_number"  # Redis key rl:id_number:<blind index of the ID number and name>

# A face finished just before its handle expired is still collected when the phone's call to
# complete arrives a little after (a slow network, the app resuming): the provider keeps the
# result for hours, and the face counts from the check's start anyway (binding.Proof.live_at).
COMPLETE_GRACE = timedelta(minutes=10)


def _audit(session: Session, row: IdentityVerification, request_id: str | None) -> None:
    """Write the finished attempt's audit event now, with the attempt's own Core writes."""
    audit.insert_now(session, [finish_event(row, request_id)])


_INSERT_CONSENT = insert(ConsentRecord.__table__)


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
    reader: Session | None = None,
) -> Outcome:
    """Begin a verification. Face methods return what the phone's SDK needs; an ID check
    finishes at once (and, when it passes, the caller's login session `session_id` gets a new
    access token with the level). Nothing is written when validation, a limit or the provider
    fails. `reader`: an autocommit session for the checks made before the provider call."""
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
    # One ID check of an account at a time (a double tap, the mini-program and the app at once):
    # claimed before anything is read, so this check sees what an earlier one committed.
    with _id_check_claim(deps, account_id) if method == ID_CHECK else nullcontext():
        return _begin(
            session, deps=deps, account_id=account_id, channel=channel, method=method, person=person,
            lookup=lookup, ip=ip, request_id=request_id, session_id=session_id, reader=reader,
        )  # fmt: skip


@contextmanager
def _id_check_claim(deps: IdentityDeps, account_id: str) -> Iterator[None]:
    """Hold "an ID check of this account is in flight" (Redis, SET NX with an expiry past the
    provider's timeout) while the block runs; a second check meanwhile is refused with 409
    before it takes quota or writes anything. Released however the block ends, by its owner only."""
    limiter = deps.ratelimiter
    token = limiter.claim(ID_CHECK_CLAIM, account_id, ttl=deps.policy.idcheck_claim_seconds)
    if token is None:
        raise IdCheckInProgress()
    try:
        yield
    finally:
        limiter.release(ID_CHECK_CLAIM, account_id, token)


def _begin(
    session: Session,
    *,
    deps: IdentityDeps,
    account_id: str,
    channel: str,
    method: str,
    person: Person,
    lookup: str,
    ip: str | None,
    request_id: str | None,
    session_id: str | None,
    reader: Session | None,
) -> Outcome:
    """`start` after the input was validated (and, for an ID check, the claim taken)."""
    policy = deps.policy
    is_face = method in FACE_METHODS
    pre = reader or session
    state = hotpath.account_state(pre.connection(), account_id, lookup)
    state.ensure_usable()
    level = state.level  # unchanged unless a check passes below
    if state.own_lookup is not None and state.own_lookup != lookup:
        raise DifferentPerson()
    if state.held_elsewhere and is_face:
        # Only a live (face) proof may fold this account into the one holding the identity.
        check_can_take(session, get_account(session, account_id), lookup, may_merge=True)
    # An ID check of an identity another account holds is not refused here: that answer, free
    # and without the name, would tell anyone signed in whether an ID number is verified on
    # this platform. It is refused once the provider matched name and number (quota taken,
    # attempt recorded: `_bind_and_pass`).
    if method == ID_CHECK and state.own_id is not None:
        raise AlreadyVerified()
    openid = _openid(pre, account_id, policy.wechat_appid) if method == "wechat_face" else None
    if method == "wechat_face" and openid is None:
        raise MethodUnavailable()  # no WeChat identity of this mini-program on the account
    session.rollback()  # no transaction stays open across the provider call
    if reader is not None:
        reader.rollback()

    quota = Quota(deps.ratelimiter)
    if is_face:
        quota.take("face_account", account_id, limit=policy.face_per_account_per_day, window=86400)
        quota.take("face_ip", ip or "-", limit=policy.face_per_ip_per_hour, window=3600)
    else:
        quota.take("idcheck_account", account_id, limit=policy.idcheck_per_account_per_day, window=86400)
        quota.take("idcheck_ip", ip or "-", limit=policy.idcheck_per_ip_per_hour, window=3600)
    if state.own_lookup != lookup:
        # Starts naming one ID number with one name, whichever accounts and addresses they come
        # from: many accounts must not spend paid checks on one identity. Keyed by a blind index
        # of the number and the name, never the number: strangers typing a wrong name with a
        # person's number use up only that pair's allowance, not the person's own (who, not yet
        # verified, would otherwise be locked out of online verification by anyone holding their
        # number). The account already holding this identity is limited per account only.
        pair = deps.hasher.hash(f"{lookup}\x1f{person.name}", purpose=ID_NUMBER_QUOTA)
        quota.take(ID_NUMBER_QUOTA, pair, limit=policy.starts_per_id_number_per_day, window=86400)

    out_ref = uuid.uuid4().hex
    provider = deps.providers[method]
    now = clock.now()
    row = IdentityVerification(
        id=new_id(), account_id=account_id, method=method, channel=channel, status=PENDING,
        out_ref=out_ref, id_lookup=lookup, name_masked=documents.mask_name(person.name),
        id_number_masked=documents.mask_id_number(person.id_number), created_at=now,
    )  # fmt: skip
    if not is_face:
        checker: IdCheckProvider = provider
        result = provider_call(quota, method, lambda: checker.check(person, out_ref=out_ref))
        row.expires_at = now
        row.provider_request_id = (result.provider_request_id or "")[:64] or None
        row.provider_code = (result.provider_code or "")[:64] or None
        finish(row, PASSED if result.matched else FAILED, None if result.matched else result.reason)
        _lock_open(session, account_id)  # before the attempt's row: see there
        hotpath.insert_verification(session.connection(), row)
        if not result.matched:
            _audit(session, row, request_id)
            commit(session)
            return Outcome(row, account_id, identity_level=level)
        proof = Proof(person, lookup, "L2", method, live=False, may_merge=False)
        return _bind_and_pass(session, deps, row, proof, session_id=session_id, request_id=request_id)

    face: FaceProvider = provider
    ctx = StartContext(out_ref=out_ref, openid=openid, return_url=policy.return_url)
    refusal: str | None = None
    try:
        started = provider_call(quota, method, lambda: face.start(person, ctx))
    except IdentityRefused as refused:  # the provider's final word already: record it
        started, refusal = None, refused.reason
        row.provider_code = refused.code[:64]
    _lock_open(session, account_id)  # closed while the provider answered: nothing is written
    conn = session.connection()
    row.consent_id = new_id()
    conn.execute(
        _INSERT_CONSENT,
        {"id": row.consent_id, "account_id": account_id, "purpose": CONSENT_FACE,
         "text_version": policy.consent_version, "channel": channel, "given_at": now, "ip": ip,
         "request_id": request_id},
    )  # fmt: skip
    if started is None:
        row.expires_at = now
        finish(row, FAILED, refusal)
        hotpath.insert_verification(conn, row)
        _audit(session, row, request_id)
        commit(session)
        return Outcome(row, account_id, identity_level=level)
    row.expires_at = now + timedelta(seconds=max(int(started.expires_in), 1))
    row.name_enc = deps.encryptor.encrypt(person.name, purpose=NAME_PURPOSE)
    row.id_number_enc = deps.encryptor.encrypt(person.id_number, purpose=ID_PURPOSE)
    row.provider_ref_enc = deps.encryptor.encrypt(started.provider_ref, purpose=REF_PURPOSE)
    row.provider_request_id = (started.provider_request_id or "")[:64] or None
    hotpath.insert_verification(conn, row)
    commit(session)
    return Outcome(row, account_id, client_payload=dict(started.client_payload), identity_level=level)


def _lock_open(session: Session, account_id: str) -> None:
    """Lock the account for the writes that follow; when it was closed meanwhile (the citizen
    closed it while the provider answered), roll back and answer 404: nothing of the person is
    written onto the closed account."""
    try:
        hotpath.lock_account(session.connection(), account_id)
    except AccountNotFound:
        session.rollback()
        raise


def _bind_and_pass(
    session: Session,
    deps: IdentityDeps,
    row: IdentityVerification,
    proof: Proof,
    *,
    session_id: str | None,
    request_id: str | None,
) -> Outcome:
    """Bind the identity a passed attempt `row` (written, not committed) proved, and commit.

    The common case (the identity is the account's own, or nobody's) runs as a few Core
    statements (domain/identity/hotpath.py); a holder elsewhere, a merge or a concurrent binding
    goes through binding.bind. A refusal is recorded on the attempt and committed before it is
    raised: the provider was paid, and the citizen sees why."""
    account_id = row.account_id
    try:
        _lock_open(session, account_id)  # closed meanwhile: the attempt and identity are not written
        state = hotpath.account_state(session.connection(), account_id, proof.lookup, session_id)
        if not hotpath.can_take_here(state, proof.lookup):
            bound = bind(session, deps=deps, account_id=account_id, proof=proof)
            return _passed(session, deps, row, bound, account_id, session_id, request_id)
        try:
            new_level, live_at, events = hotpath.take(session, state, deps=deps, proof=proof)
        except (IntegrityError, hotpath.IdentityMoved):  # bound or moved concurrently: the full rule decides
            bound = bind(session, deps=deps, account_id=account_id, proof=proof)
            return _passed(session, deps, row, bound, account_id, session_id, request_id)
    except (BoundToOtherAccount, DifferentPerson) as exc:
        values = finished_values(FAILED, refusal_reason(exc))
        hotpath.set_verification(session.connection(), row.id, values)
        finish(row, FAILED, values["reason"])
        _audit(session, row, request_id)
        session.commit()
        raise
    audit.insert_now(session, [*events, finish_event(row, request_id)])
    try:
        access = hotpath.access_token(deps, state, session_id, new_level, live_at) if session_id else None
    except SessionRevoked:
        # The caller's session ended while the provider answered (its last access token outlives
        # it by minutes): the paid, passed check is kept all the same; the caller signs in again.
        commit(session)
        raise
    commit(session)
    return Outcome(row, account_id, level_changed=True, identity_level=new_level, access_token=access)


def _passed(
    session: Session,
    deps: IdentityDeps,
    row: IdentityVerification,
    bound: Account,
    account_id: str,
    session_id: str | None,
    request_id: str | None,
) -> Outcome:
    """Record a verification that raised (or refreshed) `bound`'s level through binding.bind and
    commit. The caller's new access token is minted before the commit from the rows in hand
    (discarded if the commit fails); after a merge the caller needs a session of the other
    account instead (the merge already moved the attempt to it)."""
    merged_from = account_id if bound.id != account_id else None
    if merged_from:
        row.account_id = bound.id
    _audit(session, row, request_id)
    access = None
    if merged_from is None and session_id is not None:
        try:
            access = reissue_access(session, tokens=deps.tokens, policy=deps.session_policy,
                                    account_id=bound.id, session_id=session_id)  # fmt: skip
        except SessionRevoked:  # as in _bind_and_pass: the check is kept, the caller signs in again
            commit(session)
            raise
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
    reader: Session | None = None,
) -> Outcome:
    """Ask the provider for the result of a pending face verification and apply it.

    Pending at the provider → returned unchanged (status pending). Passed → the account reaches
    L3 now (merging per domain/identity/merge.py when another account holds the identity), and
    the caller's login session `session_id` gets a new access token carrying it. `reader`: an
    autocommit session for what is read before the provider call.
    """
    pre = reader or session
    row = hotpath.read_verification(pre.connection(), verification_id)
    if row is None or row.account_id != account_id:
        raise VerificationNotFound()
    if row.status != PENDING or row.method not in FACE_METHODS:
        raise VerificationFinished(details={"status": row.status})
    if row.expires_at + COMPLETE_GRACE <= clock.now():
        return _finish_without_provider(session, row, EXPIRED, REASON_EXPIRED, request_id)
    assert row.name_enc and row.id_number_enc and row.provider_ref_enc
    person = Person(
        deps.encryptor.decrypt(row.name_enc, purpose=NAME_PURPOSE),
        deps.encryptor.decrypt(row.id_number_enc, purpose=ID_PURPOSE),
    )
    ref = deps.encryptor.decrypt(row.provider_ref_enc, purpose=REF_PURPOSE)
    openid = _openid(pre, account_id, deps.policy.wechat_appid) if row.method == "wechat_face" else None
    if row.method == "wechat_face" and openid is None:
        raise MethodUnavailable()
    ctx = StartContext(out_ref=row.out_ref, openid=openid, return_url=deps.policy.return_url)
    session.rollback()  # no transaction stays open across the provider call
    if reader is not None:
        reader.rollback()
    provider: FaceProvider = deps.providers[row.method]
    result = provider_call(Quota(deps.ratelimiter), row.method, lambda: provider.result(person, ctx, ref))
    if result.pending:
        if row.expires_at <= clock.now():  # the face window has closed without a face
            return _finish_without_provider(session, row, EXPIRED, REASON_EXPIRED, request_id)
        return Outcome(row, account_id)
    status = PASSED if result.passed else (EXPIRED if result.reason == REASON_EXPIRED else FAILED)
    values = finished_values(status, None if result.passed else result.reason)
    values |= {"score": result.score, "provider_code": (result.provider_code or "")[:64] or None}
    if result.provider_request_id:
        values["provider_request_id"] = result.provider_request_id[:64]
    # Of two concurrent completions exactly one applies the result (the one that still finds
    # the attempt pending); the others are told it has finished.
    if not hotpath.claim(session.connection(), row.id, values):
        session.rollback()
        raise VerificationFinished(details={"status": "finished"})
    for key, value in values.items():
        setattr(row, key, value)
    if not result.passed:
        _audit(session, row, request_id)
        commit(session)
        return Outcome(row, account_id)
    # The face counts from when the check was started: its result may be collected hours later.
    proof = Proof(person, row.id_lookup, "L3", row.method, live=True, may_merge=True, live_at=row.created_at)
    return _bind_and_pass(session, deps, row, proof, session_id=session_id, request_id=request_id)


def _finish_without_provider(
    session: Session, row: IdentityVerification, status: str, reason: str, request_id: str | None
) -> Outcome:
    values = finished_values(status, reason)
    if not hotpath.claim(session.connection(), row.id, values):
        session.rollback()
        raise VerificationFinished(details={"status": "finished"})
    for key, value in values.items():
        setattr(row, key, value)
    _audit(session, row, request_id)
    session.commit()
    return Outcome(row, row.account_id)


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
    V = IdentityVerification
    ended = session.execute(
        update(V)
        .where(V.status == PENDING, V.expires_at <= now - COMPLETE_GRACE)
        .values(status=EXPIRED, reason=REASON_EXPIRED, completed_at=now,
                name_enc=None, id_number_enc=None, provider_ref_enc=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    session.commit()
    return ended
