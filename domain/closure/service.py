"""A citizen closes their own account (注销; PIPL Art. 47).

Refused while business is open (domain/closure/blockers.py) or when the request's session was
not opened by a login within FRESH_LOGIN (a refreshed token is not a login: whoever holds an
unlocked phone holds its tokens, so the citizen logs in again, by SMS code in the app or through
WeChat in the mini-program). Otherwise, in one transaction: drafts and the files only they used
are deleted; every row of a model marked `erased_on_closure` goes (channel identities, so the
same WeChat user or phone later makes a new account; the verified identity with its blind
index, so the ID number can prove a new account; verification attempts with face results;
wallet; devices; inbox; notification choices; unredeemed app codes); consents no kept record
names go; every session and app grant ends; the account stays as a tombstone (status deleted,
`closed_at`) because finished cases, which are government records, still name it. What is kept
and why: KEPT. The phone number on file, read before it is erased, is sent an SMS that the
account was closed (an outbox job holding it encrypted until sent). Audited as
`account.closed` with counts only; a refusal as
`account.closure_refused` (reason and blocker kinds only, and the client's address),
committed after the refused transaction was rolled back. Attempts are limited per account
(ATTEMPTS_PER_HOUR, before anything is locked or written; 429 with Retry-After beyond): each
refusal locks the account and writes a permanent audit event, and a new Idempotency-Key is all
another attempt needs. A closure refused because a case stayed held (ClosureBusy) is audited
but gives its attempt back: the citizen is told to retry in a moment.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import DecryptionError, Encryptor
from core.db import Base, lock_not_available, lock_one, take_write_lock
from core.errors import RateLimited
from core.outbox.models import ACTIVE_STATES, SCRUB_KEY, OutboxJob, scrubbed
from core.outbox.models import DEAD as OUTBOX_DEAD
from core.outbox.service import attempts_spanning
from core.ratelimit import RateLimiter
from domain.accounts import profile_cache
from domain.accounts.errors import AccountNotFound
from domain.accounts.models import DELETED, PHONE, Account, ChannelIdentity
from domain.accounts.service import PHONE_PURPOSE
from domain.applications import states
from domain.applications.deps import ApplicationDeps
from domain.applications.models import Application, ApplicationEvent, ApplicationFile, ApplicationMaterial
from domain.auth import sessions, sms_login
from domain.auth.models import LoginSession, SmsChallenge
from domain.auth.revocation import RevocationList
from domain.closure import blockers
from domain.closure.errors import ClosureBlocked, ClosureBusy, FreshLoginRequired
from domain.identity.models import ConsentRecord, IdentityVerification
from domain.shared_data.models import SharingGrant

log = logging.getLogger(__name__)

FRESH_LOGIN = timedelta(minutes=10)
# The closure follows a fresh SMS login, so the number may have met the provider's per-hour
# limit: its message is retried for at least this long before the job is given up.
SMS_RETRY_SPAN = 3600.0
# Closure attempts per account per hour: far more than a citizen clearing what blocks them needs.
ATTEMPTS_PER_HOUR = 10
# Busy answers (a case held at every try) given back to those attempts per account per hour:
# a citizen retrying as told is not locked out, and an account whose case stays held cannot
# make a busy answer (an audit event, a worker waiting CASE_LOCK_TRIES times) every second.
BUSY_GIVEN_BACK_PER_HOUR = 30
# How often the closure steps back for a case a submission (or another writer) holds before it
# waits for the case holding the account, as it once always did.
CASE_LOCK_TRIES = 3
CASE_WAIT_SECONDS = 5.0  # between tries, for a writer to finish with a case

# Per-account tables whose rows outlive the closure, and why (tests hold every table with an
# `account_id` to being either erased or named here).
KEPT: dict[str, str] = {
    "applications": "finished cases are government records the departments still handle; drafts go",
    "application_files": "the materials of finished cases; files only drafts used are deleted",
    "application_notices": "timeline notices of finished cases (a closed account is told nothing more)",
    "appointments": "past visits are the hall's records; a booking still to come blocks the closure",
    "complaints": "closed complaints are the hotline's records (text encrypted); an open one blocks",
    "evaluations": "好差评 ratings are public service figures and the department's record",
    "rectification_tasks": "the department's rectification record; an appeal not yet answered blocks",
    "sharing_grants": "what the exchange was authorised to share for a kept case (the consent's record)",
    "shared_records": "status of data fetched for a kept case; values are purged once it finished",
    "data_access_log": "who used the person's data: an accountability record, like the audit log",
    "consent_records": "a consent a kept case or sharing grant names is its legal basis; others go",
    "login_sessions": "ended by the closure; the sweeper deletes them with their refresh tokens a day later",
    "oauth_grants": "ended by the closure: the record that the consent given to the app was withdrawn",
}


def erased_models() -> list[type]:
    """Mapped classes whose rows of a closing account are deleted, children before parents."""
    order = {table.name: i for i, table in enumerate(Base.metadata.sorted_tables)}
    found = [m.class_ for m in Base.registry.mappers if getattr(m.class_, "erased_on_closure", False)]
    return sorted(found, key=lambda cls: -order[cls.__table__.name])


def _fresh_login_required(session: Session, account_id: str, session_id: str) -> bool:
    sess = session.get(LoginSession, session_id)
    if sess is None or sess.account_id != account_id:
        return True
    return sess.created_at < clock.now() - FRESH_LOGIN


def _drafts(session: Session, account_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Application.id).where(
                Application.account_id == account_id, Application.status == states.DRAFT
            )
        )
    )


def preview(session: Session, *, account_id: str, session_id: str, lang: str = "zh") -> dict[str, Any]:
    """What a closure now would meet: the blockers, the drafts it deletes, whether to log in
    again. `can_close`: a closure asked now would succeed (nothing blocks, the login is fresh)."""
    found = blockers.find(session, account_id)
    stale = _fresh_login_required(session, account_id, session_id)
    return {
        "can_close": not found and not stale,
        "blockers": blockers.labelled(found, lang),
        "drafts": len(_drafts(session, account_id)),
        "fresh_login_required": stale,
        "fresh_login_max_age_seconds": int(FRESH_LOGIN.total_seconds()),
    }


@dataclass(frozen=True)
class Closed:
    closed_at: datetime
    drafts_deleted: int


def _busy_given_back(ratelimiter: RateLimiter, account_id: str) -> bool:
    """Whether this busy answer's attempt may be given back (beyond BUSY_GIVEN_BACK_PER_HOUR it
    counts, as any other refusal does)."""
    try:
        ratelimiter.hit("account-closure-busy", account_id, limit=BUSY_GIVEN_BACK_PER_HOUR, window=3600)
    except RateLimited:
        return False
    return True


def close(
    session: Session,
    *,
    revocations: RevocationList,
    applications: ApplicationDeps,
    encryptor: Encryptor,
    ratelimiter: RateLimiter,
    account_id: str,
    session_id: str,
    request_id: str | None,
    ip: str | None = None,
    lang: str = "zh",
) -> Closed:
    """Close the account (see the module's docstring). Commits; raises ClosureBlocked (409),
    FreshLoginRequired (403) or ClosureBusy (503, not counted as an attempt) having written
    nothing but the refusal's audit event, RateLimited (429) past ATTEMPTS_PER_HOUR having
    written nothing."""
    attempt = ratelimiter.hit("account-closure", account_id, limit=ATTEMPTS_PER_HOUR, window=3600)
    try:
        account = _lock_account_and_cases(session, account_id)
    except ClosureBusy:
        _audit_refusal(session, account_id, request_id, ip, "failed", reason="busy")
        # Someone else's write, and the citizen is told to retry in 2 s: retried as told, it must
        # not use up the hour's attempts, up to BUSY_GIVEN_BACK_PER_HOUR of them.
        if _busy_given_back(ratelimiter, account_id):
            ratelimiter.undo("account-closure", account_id, attempt)
        raise
    found = blockers.find(session, account_id)
    stale = _fresh_login_required(session, account_id, session_id)
    if found:
        kinds = dict(Counter(b["type"] for b in found))
        _audit_refusal(
            session,
            account_id,
            request_id,
            ip,
            "rejected",
            reason="blocked",
            blockers=kinds,
            fresh_login=not stale,
        )
        raise ClosureBlocked(details={"blockers": blockers.labelled(found, lang)})
    if stale:
        _audit_refusal(session, account_id, request_id, ip, "denied", reason="login_required")
        minutes = int(FRESH_LOGIN.total_seconds() // 60)
        raise FreshLoginRequired(
            details={"max_age_seconds": int(FRESH_LOGIN.total_seconds())}, minutes=minutes
        )
    now = clock.now()
    phone = _phone_on_file(session, encryptor, account_id)
    drafts = _delete_drafts(session, account_id)
    blobs = _delete_unused_files(session, applications, account_id)
    _erase(session, _with_merged(session, account_id))
    account.status, account.closed_at, account.updated_at = DELETED, now, now
    account.identity_level, account.live_checked_at = "L0", None  # no identity, no face result left
    session.flush()
    sessions.revoke_all(session, revocations=revocations, account_id=account_id, reason="account_closed")
    profile_cache.mark_changed(session, account_id)
    if phone:  # whoever holds the SIM learns of it, should someone else have closed the account
        day = clock.local_date()
        sms_login.queue_sms(
            session, encryptor, sms_login.ACCOUNT_CLOSED_TEMPLATE, phone, [f"{day.month}月{day.day}日"],
            max_attempts=attempts_spanning(SMS_RETRY_SPAN),
        )  # fmt: skip
    audit.record(
        session, actor_type="citizen", actor_id=account_id, action="account.closed",
        target_type="account", target_id=account_id, ip=ip, request_id=request_id,
        details={"drafts_deleted": len(drafts), "files_deleted": len(blobs)},
    )  # fmt: skip
    session.commit()
    for key in blobs:  # once no row names them; a blob left behind is swept as an orphan later
        try:
            applications.storage.delete(key)
        except Exception:  # the orphan sweep retries; the closure itself is done
            log.warning("closure left a blob for the orphan sweep", exc_info=True)
    return Closed(now, len(drafts))


def _lock_account_and_cases(session: Session, account_id: str) -> Account:
    """The account, then its cases, locked (AccountNotFound when closed or gone): a submission
    under way either finished first (and blocks) or waits and then finds its draft gone.

    Never waits for a case while holding the account: a submission holding its case takes a
    key-share lock on the account (its consent's foreign key; the wallet's sync of a certificate
    with no wallet row), so that wait was a deadlock PostgreSQL broke with a 503. A case held by
    a writer: roll back, wait for it holding nothing (at most CASE_WAIT_SECONDS), and try again;
    held at every one of CASE_LOCK_TRIES tries, ClosureBusy (a short retry), nothing written."""
    cases = select(Application.id).where(Application.account_id == account_id).order_by(Application.id)
    for attempt in range(CASE_LOCK_TRIES):
        account = lock_one(session, Account, Account.id == account_id)
        if account is None or account.status == DELETED:
            session.rollback()
            raise AccountNotFound()
        take_write_lock(session, Application.__table__, Application.account_id == account_id)
        try:
            session.execute(cases.with_for_update(nowait=True))
            return account
        except OperationalError as exc:
            if not lock_not_available(exc):
                raise
        session.rollback()
        if attempt < CASE_LOCK_TRIES - 1:
            _wait_for_cases(session, cases)
    raise ClosureBusy(headers={"Retry-After": "2"})


def _wait_for_cases(session: Session, cases: Any) -> None:
    """Wait until the cases' writers are done, holding nothing else, for at most
    CASE_WAIT_SECONDS (PostgreSQL's lock_timeout for this transaction); then roll back."""
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL lock_timeout = '{int(CASE_WAIT_SECONDS * 1000)}ms'"))
        session.execute(cases.with_for_update())
    except OperationalError as exc:
        if not lock_not_available(exc):
            raise
    finally:
        session.rollback()


def _audit_refusal(
    session: Session, account_id: str, request_id: str | None, ip: str | None, outcome: str, **details: Any
) -> None:
    """Roll the refused closure back (it wrote nothing), then record the refusal in a transaction
    of its own: an attempt by whoever holds the phone is on the trail even though it changed
    nothing. `details`: the reason and blocker kinds, never personal data. A failure to record is
    logged; the citizen still gets the refusal."""
    session.rollback()
    try:
        audit.record(
            session, actor_type="citizen", actor_id=account_id, action="account.closure_refused",
            target_type="account", target_id=account_id, outcome=outcome, ip=ip,
            request_id=request_id, details=details,
        )  # fmt: skip
        session.commit()
    except Exception:
        session.rollback()
        log.exception("a refused closure could not be audited", extra={"request_id": request_id})


def _phone_on_file(session: Session, encryptor: Encryptor, account_id: str) -> str | None:
    """The account's phone number, read before the closure erases it; None without one (or
    one that no longer decrypts: the closure goes on without its SMS)."""
    value = session.scalar(
        select(ChannelIdentity.value_enc).where(
            ChannelIdentity.account_id == account_id, ChannelIdentity.kind == PHONE
        )
    )
    if not value:
        return None
    try:
        return encryptor.decrypt(value, purpose=PHONE_PURPOSE)
    except DecryptionError:
        log.warning("closure: the phone on file does not decrypt; no closure SMS")
        return None


def _delete_drafts(session: Session, account_id: str) -> list[str]:
    ids = _drafts(session, account_id)
    if ids:
        profile_cache.mark_application_changed(session, *ids)
        session.execute(delete(ApplicationMaterial).where(ApplicationMaterial.application_id.in_(ids)))
        session.execute(delete(ApplicationEvent).where(ApplicationEvent.application_id.in_(ids)))
        session.execute(delete(Application).where(Application.id.in_(ids)))
    return ids


def _delete_unused_files(session: Session, deps: ApplicationDeps, account_id: str) -> list[str]:
    """Delete the account's file rows no kept case (or complaint) holds; their storage keys."""
    unused = (
        ApplicationFile.account_id == account_id,
        ~exists().where(ApplicationMaterial.file_id == ApplicationFile.id),
        *(~holds(ApplicationFile.id) for holds in deps.file_holders),
    )
    rows = session.execute(select(ApplicationFile.id, ApplicationFile.storage_key).where(*unused)).all()
    if rows:
        session.execute(delete(ApplicationFile).where(ApplicationFile.id.in_([r.id for r in rows])))
    return [r.storage_key for r in rows]


def _with_merged(session: Session, account_id: str) -> list[str]:
    """The account and every account merged into it, directly or through others: a merge leaves
    on the closed account what does not follow the person (wallet certificates), which is theirs."""
    found, frontier = [account_id], [account_id]
    while frontier:
        frontier = list(session.scalars(select(Account.id).where(Account.merged_into_id.in_(frontier))))
        frontier = [i for i in frontier if i not in found]
        found += frontier
    return found


def _erase(session: Session, owners: list[str]) -> None:
    """Delete every erased model's rows of `owners`, pending SMS codes to their phones, and the
    consents nothing kept names."""
    phones = select(ChannelIdentity.lookup).where(
        ChannelIdentity.account_id.in_(owners), ChannelIdentity.kind == PHONE
    )
    challenges = SmsChallenge.phone_lookup.in_(phones)
    _scrub_sms_jobs(session, select(SmsChallenge.outbox_job_id).where(challenges))
    session.execute(delete(SmsChallenge).where(challenges))
    for model in erased_models():
        session.execute(delete(model).where(model.account_id.in_(owners)))
    named = (
        exists().where(Application.consent_id == ConsentRecord.id),
        exists().where(SharingGrant.consent_id == ConsentRecord.id),
        exists().where(IdentityVerification.consent_id == ConsentRecord.id),
    )
    session.execute(delete(ConsentRecord).where(ConsentRecord.account_id.in_(owners), *(~n for n in named)))


def _scrub_sms_jobs(session: Session, job_ids: Any) -> None:
    """The outbox jobs that sent the deleted codes keep the phone and code (encrypted) until they
    succeed: a dead or waiting one is scrubbed now, marked erased as the retention sweep marks them
    (an operator's replay is refused: 409 jobs.data_erased), and one not yet sent is not sent (its
    code is gone with the closure)."""
    now = clock.now()
    for job in session.scalars(select(OutboxJob).where(OutboxJob.id.in_(job_ids))):
        if SCRUB_KEY in job.payload:
            job.payload = scrubbed(job.payload, now)
        if job.status in ACTIVE_STATES:
            job.status, job.last_error, job.updated_at = OUTBOX_DEAD, "account closed", now
            job.finished_at = now
