"""Real-name verification: start with a provider, complete by asking it, bind the identity.

The client's word is never trusted: `complete` asks the provider for the result. Names and ID
numbers are validated before any paid call, counted against per-account and per-IP limits,
encrypted at rest and erased from an attempt once it has finished.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import Encryptor, LookupHasher
from core.ratelimit import RateLimiter
from domain.accounts.models import WECHAT_OPENID, Account, ChannelIdentity
from domain.accounts.service import ensure_usable, get_account
from domain.auth.revocation import RevocationList
from domain.identity import documents, merge
from domain.identity.errors import (
    AlreadyVerified,
    BoundToOtherAccount,
    ConsentOutdated,
    ConsentRequired,
    DifferentPerson,
    IdentityInvalid,
    MethodUnavailable,
    ProviderFailedError,
    ProviderUnavailableError,
    VerificationFinished,
    VerificationNotFound,
)
from domain.identity.levels import higher
from domain.identity.models import (
    CONSENT_FACE,
    EXPIRED,
    FACE_METHODS,
    FAILED,
    ID_CHECK,
    IN_PERSON,
    PASSED,
    PENDING,
    ConsentRecord,
    IdentityVerification,
    VerifiedIdentity,
)
from integrations.realname.base import (
    REASON_EXPIRED,
    FaceProvider,
    IdCheckProvider,
    Person,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)

log = logging.getLogger(__name__)

NAME_PURPOSE = "identity-name"
ID_PURPOSE = "identity-id-number"
REF_PURPOSE = "identity-provider-ref"
ID_CHECK_EXPIRY = 0  # an ID check finishes within its request


@dataclass(frozen=True)
class IdentityPolicy:
    """Which methods each channel offers, the consent version in force, and the limits."""

    methods_by_channel: Mapping[str, tuple[str, ...]]
    consent_version: str
    face_per_account_per_day: int
    face_per_ip_per_hour: int
    idcheck_per_account_per_day: int
    wechat_appid: str
    return_url: str

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> IdentityPolicy:
        """IDENTITY_METHODS_*, FACE_CONSENT_VERSION and the limits from the app config."""

        def methods(spec: str) -> tuple[str, ...]:
            return tuple(m.strip() for m in spec.split(",") if m.strip())

        return cls(
            methods_by_channel={
                "miniprogram": methods(cfg["IDENTITY_METHODS_MINIPROGRAM"]),
                "app": methods(cfg["IDENTITY_METHODS_APP"]),
            },
            consent_version=cfg["FACE_CONSENT_VERSION"],
            face_per_account_per_day=int(cfg["FACE_PER_ACCOUNT_PER_DAY"]),
            face_per_ip_per_hour=int(cfg["FACE_PER_IP_PER_HOUR"]),
            idcheck_per_account_per_day=int(cfg["IDCHECK_PER_ACCOUNT_PER_DAY"]),
            wechat_appid=cfg["WECHAT_APPID"],
            return_url=cfg["ALIPAY_RETURN_URL"],
        )

    def methods(self, channel: str) -> tuple[str, ...]:
        """Methods a citizen on `channel` may start."""
        return self.methods_by_channel.get(channel, ())


@dataclass
class IdentityDeps:
    """What the verification services need, built once by the app factory."""

    encryptor: Encryptor
    hasher: LookupHasher
    ratelimiter: RateLimiter
    revocations: RevocationList
    policy: IdentityPolicy
    providers: Mapping[str, Any]  # method -> FaceProvider | IdCheckProvider


@dataclass(frozen=True)
class Outcome:
    """A verification as the API shows it, plus the account the caller now belongs to."""

    verification: IdentityVerification
    account_id: str
    merged_from: str | None = None
    client_payload: dict[str, Any] | None = None
    level_changed: bool = False


def id_lookup(hasher: LookupHasher, id_number: str) -> str:
    """The blind index of an ID number."""
    return hasher.hash(id_number, purpose=ID_PURPOSE)


def person_from(name: str, id_number: str) -> Person:
    """Validate and normalise, or raise IdentityInvalid naming each bad field."""
    problems: dict[str, list[str]] = {}
    clean_name = clean_id = ""
    try:
        clean_name = documents.normalise_name(name)
    except documents.DocumentProblem as exc:
        problems["name"] = [f"identity.name.{exc.code}"]
    try:
        clean_id = documents.normalise_id_number(id_number, today=clock.now().date())
    except documents.DocumentProblem as exc:
        problems["id_number"] = [f"identity.id_number.{exc.code}"]
    if problems:
        raise IdentityInvalid(fields=problems)
    return Person(clean_name, clean_id)


def identity_of(session: Session, account_id: str) -> VerifiedIdentity | None:
    """The account's verified identity, if any."""
    return session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.account_id == account_id))


def _holder(session: Session, lookup: str) -> VerifiedIdentity | None:
    return session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.id_lookup == lookup))


def _check_can_take(session: Session, account: Account, lookup: str) -> None:
    """Refuse before any paid call when the identity could not end up on this account."""
    own = identity_of(session, account.id)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    holder = _holder(session, lookup)
    if holder is not None and holder.account_id != account.id:
        target = session.get(Account, holder.account_id)
        if target is None or not merge.can_merge(session, source=account, target=target):
            raise BoundToOtherAccount()


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
) -> Outcome:
    """Begin a verification. Face methods return what the phone's SDK needs; an ID check
    finishes at once. Nothing is written when validation, a limit or the provider fails."""
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
    _check_can_take(session, account, lookup)
    if method == ID_CHECK and identity_of(session, account_id) is not None:
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
        if result.matched:
            _finish(row, PASSED, None)
            final = _bind(session, deps=deps, account_id=account_id, person=person, lookup=lookup,
                          level="L2", method=method, live=False)  # fmt: skip
        else:
            _finish(row, FAILED, result.reason)
            final = account_id
        row.account_id = final
        _audit_finish(session, row, request_id)
        _commit(session)
        merged_from = account_id if final != account_id else None
        return Outcome(row, final, merged_from=merged_from, level_changed=result.matched)

    face: FaceProvider = provider
    ctx = StartContext(out_ref=out_ref, openid=openid, return_url=policy.return_url)
    started = _provider_call(quota, method, lambda: face.start(person, ctx))
    consent_row = ConsentRecord(
        account_id=account_id, purpose=CONSENT_FACE, text_version=policy.consent_version,
        channel=channel, given_at=now, ip=ip, request_id=request_id,
    )  # fmt: skip
    session.add(consent_row)
    session.flush()
    row.consent_id = consent_row.id
    row.expires_at = now + timedelta(seconds=max(int(started.expires_in), 1))
    row.name_enc = deps.encryptor.encrypt(person.name, purpose=NAME_PURPOSE)
    row.id_number_enc = deps.encryptor.encrypt(person.id_number, purpose=ID_PURPOSE)
    row.provider_ref_enc = deps.encryptor.encrypt(started.provider_ref, purpose=REF_PURPOSE)
    row.provider_request_id = (started.provider_request_id or "")[:64] or None
    session.add(row)
    _commit(session)
    return Outcome(row, account_id, client_payload=dict(started.client_payload))


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent verification bound the same identity first
        session.rollback()
        raise BoundToOtherAccount() from exc


def _finish(row: IdentityVerification, status: str, reason: str | None) -> None:
    row.status = status
    row.reason = reason
    row.completed_at = clock.now()
    # The provider no longer needs them: keep only the masked copies and the blind index.
    row.name_enc = row.id_number_enc = row.provider_ref_enc = None


def _audit_finish(session: Session, row: IdentityVerification, request_id: str | None) -> None:
    audit.record(
        session, actor_type="citizen" if row.method != IN_PERSON else "operator",
        actor_id=row.account_id if row.method != IN_PERSON else row.operator_id,
        action=f"identity.verification_{row.status}", target_type="account", target_id=row.account_id,
        outcome="ok" if row.status == PASSED else "failed", request_id=request_id,
        details={"verification_id": row.id, "method": row.method, "reason": row.reason,
                 "provider_code": row.provider_code, "score": row.score},
    )  # fmt: skip


def complete(
    session: Session, *, deps: IdentityDeps, account_id: str, verification_id: str, request_id: str | None
) -> Outcome:
    """Ask the provider for the result of a pending face verification and apply it.

    Pending at the provider → returned unchanged (status pending). Passed → the account reaches
    L3 now (merging per domain/identity/merge.py when another account holds the identity).
    """
    row = session.get(IdentityVerification, verification_id)
    if row is None or row.account_id != account_id:
        raise VerificationNotFound()
    if row.status != PENDING or row.method not in FACE_METHODS:
        raise VerificationFinished(details={"status": row.status})
    if row.expires_at <= clock.now():
        _finish(row, EXPIRED, REASON_EXPIRED)
        _audit_finish(session, row, request_id)
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
    method, row_id = row.method, row.id
    session.rollback()
    provider: FaceProvider = deps.providers[method]
    result = _provider_call(_Quota(deps.ratelimiter), method, lambda: provider.result(person, ctx, ref))
    row = session.get(IdentityVerification, row_id)
    assert row is not None
    if result.pending:
        return Outcome(row, account_id)
    status = PASSED if result.passed else (EXPIRED if result.reason == REASON_EXPIRED else FAILED)
    # Of two concurrent completions exactly one applies the result.
    claimed = session.execute(
        update(IdentityVerification)
        .where(IdentityVerification.id == row_id, IdentityVerification.status == PENDING)
        .values(status=status)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        session.rollback()
        raise VerificationFinished(details={"status": "finished"})
    _finish(row, status, None if result.passed else result.reason)
    row.score = result.score
    row.provider_code = (result.provider_code or "")[:64] or None
    if result.provider_request_id:
        row.provider_request_id = result.provider_request_id[:64]
    final, merged_from = account_id, None
    if result.passed:
        final = _bind(session, deps=deps, account_id=account_id, person=person,
                      lookup=row.id_lookup, level="L3", method=method, live=True)  # fmt: skip
        merged_from = account_id if final != account_id else None
        row.account_id = final
    _audit_finish(session, row, request_id)
    _commit(session)
    return Outcome(row, final, merged_from=merged_from, level_changed=result.passed)


def _bind(
    session: Session,
    *,
    deps: IdentityDeps,
    account_id: str,
    person: Person,
    lookup: str,
    level: str,
    method: str,
    live: bool,
) -> str:
    """Give the proved identity and level to the account (or to the account that already holds
    the identity, merging this one into it). Returns the account id the citizen now uses."""
    now = clock.now()
    account = get_account(session, account_id)
    own = identity_of(session, account_id)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    holder = _holder(session, lookup)
    if holder is not None and holder.account_id != account_id:
        target = session.get(Account, holder.account_id)
        if target is None or not merge.can_merge(session, source=account, target=target):
            raise BoundToOtherAccount()
        merge.merge(session, revocations=deps.revocations, source=account, target=target)
        account, own = target, holder
    if own is None:
        own = VerifiedIdentity(
            account_id=account.id, id_lookup=lookup, level=level, method=method, verified_at=now,
            name_enc="", id_number_enc="", name_masked="", id_number_masked="", updated_at=now,
        )  # fmt: skip
        session.add(own)
    # The newest proof wins for the name (a legal change of name shows up here).
    own.name_enc = deps.encryptor.encrypt(person.name, purpose=NAME_PURPOSE)
    own.id_number_enc = deps.encryptor.encrypt(person.id_number, purpose=ID_PURPOSE)
    own.name_masked = documents.mask_name(person.name)
    own.id_number_masked = documents.mask_id_number(person.id_number)
    own.level = higher(own.level, level)
    own.method = method
    own.updated_at = now
    if live:
        own.live_checked_at = now
        account.live_checked_at = now
    previous = account.identity_level
    account.identity_level = higher(account.identity_level, level)
    account.updated_at = now
    if previous != account.identity_level:
        audit.record(
            session, actor_type="system", actor_id=None, action="identity.level_raised",
            target_type="account", target_id=account.id,
            details={"from": previous, "to": account.identity_level, "method": method},
        )  # fmt: skip
    session.flush()
    return account.id


def record_in_person(
    session: Session,
    *,
    deps: IdentityDeps,
    operator_id: str,
    account_id: str,
    name: str,
    id_number: str,
    hall: str,
    request_id: str | None,
) -> Outcome:
    """An operator checked the citizen and their ID card at a service hall: L3 without a face
    scan. The identity must be free or already this account's (no merges by operators)."""
    person = person_from(name, id_number)
    lookup = id_lookup(deps.hasher, person.id_number)
    account = get_account(session, account_id)
    ensure_usable(account)
    own = identity_of(session, account_id)
    if own is not None and own.id_lookup != lookup:
        raise DifferentPerson()
    holder = _holder(session, lookup)
    if holder is not None and holder.account_id != account_id:
        raise BoundToOtherAccount()
    now = clock.now()
    row = IdentityVerification(
        account_id=account_id, method=IN_PERSON, channel="hall", status=PENDING,
        out_ref=uuid.uuid4().hex, id_lookup=lookup, name_masked=documents.mask_name(person.name),
        id_number_masked=documents.mask_id_number(person.id_number), created_at=now, expires_at=now,
        operator_id=operator_id, hall=hall[:64],
    )  # fmt: skip
    session.add(row)
    _finish(row, PASSED, None)
    _bind(session, deps=deps, account_id=account_id, person=person, lookup=lookup,
          level="L3", method=IN_PERSON, live=True)  # fmt: skip
    _audit_finish(session, row, request_id)
    _commit(session)
    return Outcome(row, account_id, level_changed=True)


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
