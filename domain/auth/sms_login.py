"""App login with a one-time code sent by SMS: send a code, then verify it and open a session.

The code is never stored in the clear: the challenge keeps an HMAC keyed with the server's
lookup key and bound to the challenge id (six digits are too few for a plain hash), and the
outbox job that delivers it carries the phone and code encrypted.

A code belongs to whoever asked for it: the app that holds its `challenge_id`, or a login from
the address that asked. Anyone else who knows the number (a stranger) can neither burn it with
wrong guesses, nor replace it by asking for a code of their own, nor use up the number's sends
from their address: their wrong codes count in `stray_attempts` and stop them alone
(docs/identity.md, "SMS login and strangers").
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import Encryptor, LookupHasher, constant_time_equal
from core.db import in_batches, is_id, new_id
from core.errors import RateLimited
from core.outbox import service as outbox
from core.outbox.models import OutboxJob
from core.ratelimit import RateLimiter
from core.tokens import TokenService
from domain.accounts import service as accounts
from domain.accounts.models import Account
from domain.accounts.phone import normalize_phone
from domain.auth import sessions
from domain.auth.errors import OtpExpired, OtpInvalid, OtpTooManyAttempts
from domain.auth.models import CHANNEL_APP, SmsChallenge

SMS_JOB = "sms.send"
SMS_JOB_PURPOSE = "sms-job"  # encryption purpose of the job's secret part
OTP_TEMPLATE = "otp"
ACCOUNT_CLOSED_TEMPLATE = "account_closed"  # domain/closure: the number on file is told
# Challenges are deleted this long after they expired (or were replaced, burned or used): none
# can open a session then, and the login's audit event keeps the challenge id.
CHALLENGE_RETENTION = timedelta(days=1)
PURGE_BATCH = 500  # challenges deleted in one transaction
PURGE_BATCHES = 20  # transactions at most in one sweeper pass; the rest waits for the next


@dataclass(frozen=True)
class OtpPolicy:
    ttl: int
    max_attempts: int
    min_interval: int
    per_phone_per_hour: int  # per phone and asking address
    per_ip_per_hour: int
    login_per_ip_per_minute: int
    per_phone_total_per_hour: int = 5  # every address together (the provider's per-number limits)
    per_phone_total_per_day: int = 10

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> OtpPolicy:
        """Read OTP_* / SMS_PER_* / LOGIN_PER_IP_PER_MINUTE."""
        return cls(
            ttl=cfg["OTP_TTL"],
            max_attempts=cfg["OTP_MAX_ATTEMPTS"],
            min_interval=cfg["SMS_PER_PHONE_MIN_INTERVAL"],
            per_phone_per_hour=cfg["SMS_PER_PHONE_PER_HOUR"],
            per_ip_per_hour=cfg["SMS_PER_IP_PER_HOUR"],
            login_per_ip_per_minute=cfg["LOGIN_PER_IP_PER_MINUTE"],
            per_phone_total_per_hour=cfg["SMS_PER_PHONE_TOTAL_PER_HOUR"],
            per_phone_total_per_day=cfg["SMS_PER_PHONE_TOTAL_PER_DAY"],
        )


@dataclass(frozen=True)
class CodeSent:
    expires_in: int
    resend_after: int
    challenge_id: str
    job_id: str


@dataclass(frozen=True)
class SmsLogin:
    tokens: sessions.TokenPair
    new_account: bool


def _code_hash(hasher: LookupHasher, challenge_id: str, code: str) -> str:
    return hasher.hash(code, purpose=f"sms-otp:{challenge_id}")


def _asker(hasher: LookupHasher, ip: str) -> str:
    """The keyed hash of an asking address (the database keeps no addresses for this)."""
    return hasher.hash(ip, purpose="sms-otp-asker")


def new_code() -> str:
    """Six random digits from the OS CSPRNG."""
    return f"{secrets.randbelow(10**6):06d}"


def send_code(
    session: Session,
    *,
    encryptor: Encryptor,
    hasher: LookupHasher,
    ratelimiter: RateLimiter,
    policy: OtpPolicy,
    phone: str,
    ip: str,
) -> CodeSent:
    """Create a challenge and its delivery job for `phone`. Commits.

    Says nothing about whether an account exists for the number. Raises InvalidPhone or
    RateLimited (per IP per hour; per phone and address per interval and per hour; per phone
    from every address per hour and per day).
    """
    number = normalize_phone(phone)
    lookup = accounts.phone_lookup(hasher, number)
    asker = _asker(hasher, ip)
    # Rate-limit keys name the keyed hash, so Redis never holds the number itself. A request one
    # limit refuses counts against none: citizens sharing an address (a hall's Wi-Fi) do not lose
    # the address's sends to someone tapping "resend" too early, nor a number its sends to
    # requests the address's limit refused. The interval and the hourly allowance of a number
    # are per asking address: a stranger who knows the number uses up only their own. The
    # totals bound what every address together may send to one number (an SMS flood), at the
    # provider's own limits per number: a code it would refuse is a 429 with the wait now, not
    # a 202 whose message never arrives. Many addresses together can still reach them; the
    # citizen then waits out Retry-After (docs/identity.md).
    limits = (
        ("sms-send-ip", ip, policy.per_ip_per_hour, 3600),
        ("sms-send-phone-interval", f"{lookup}:{asker}", 1, policy.min_interval),
        ("sms-send-phone-hour", f"{lookup}:{asker}", policy.per_phone_per_hour, 3600),
        ("sms-send-phone-total-hour", lookup, policy.per_phone_total_per_hour, 3600),
        ("sms-send-phone-total-day", lookup, policy.per_phone_total_per_day, 86400),
    )
    counted: list[tuple[str, str, str]] = []
    try:
        for name, ident, limit, window in limits:
            counted.append((name, ident, ratelimiter.hit(name, ident, limit=limit, window=window)))
    except RateLimited:
        for name, ident, member in counted:
            ratelimiter.undo(name, ident, member)
        raise

    now = clock.now()
    # A new code replaces every earlier one this address asked for and still open for this
    # number (a "resend"); a code someone else asked for stays theirs.
    session.execute(
        update(SmsChallenge)
        .where(
            SmsChallenge.phone_lookup == lookup,
            # and a code asked for before askers were kept, which no login can tell apart
            or_(SmsChallenge.requested_by == asker, SmsChallenge.requested_by.is_(None)),
            SmsChallenge.consumed_at.is_(None),
            SmsChallenge.expires_at > now,
        )
        .values(expires_at=now)
    )
    code = new_code()
    challenge = SmsChallenge(
        id=new_id(),
        phone_lookup=lookup,
        created_at=now,
        expires_at=now + timedelta(seconds=policy.ttl),
        attempts=0,
        requested_by=asker,
        stray_attempts=0,
    )
    challenge.code_hash = _code_hash(hasher, challenge.id, code)
    session.add(challenge)
    params = [code, str(max(1, policy.ttl // 60))]
    job = queue_sms(session, encryptor, OTP_TEMPLATE, number, params, challenge_id=challenge.id)
    challenge.outbox_job_id = job.id
    session.commit()
    return CodeSent(policy.ttl, policy.min_interval, challenge.id, job.id)


def purge_expired_challenges(
    session: Session, *, batch: int = PURGE_BATCH, batches: int = PURGE_BATCHES
) -> int:
    """Delete the challenges that expired more than CHALLENGE_RETENTION ago, `batch` per
    transaction, at most `batches` of them; each commits (a burst of sends must not become one
    long delete). An expired code never comes back, so nothing needs a lock. How many went. (A
    used, replaced or burned code ended at once: its lifetime bounds it too.)"""
    expired = SmsChallenge.expires_at < clock.now() - CHALLENGE_RETENTION
    return in_batches(
        session, select(SmsChallenge.id).where(expired),
        lambda ids: session.execute(delete(SmsChallenge).where(SmsChallenge.id.in_(ids))),
        batch=batch, batches=batches,
    )  # fmt: skip


def challenge_is_live(session: Session, challenge_id: str) -> bool:
    """Whether a code can still be used (not expired, replaced, used or burned)."""
    row = session.get(SmsChallenge, challenge_id)
    return bool(row and row.consumed_at is None and row.expires_at > clock.now())


def queue_sms(
    session: Session, encryptor: Encryptor, template: str, phone: str, params: list[str],
    *, max_attempts: int | None = None, **plain: str,
) -> OutboxJob:  # fmt: skip
    """Add an SMS job (`template`: a key of workers.tasks.sms.TEMPLATE_SETTINGS) to the caller's
    transaction: the phone and parameters travel encrypted and are erased once the message is
    sent. `plain`: payload fields the worker reads as they are (ids, never personal data)."""
    secret = json.dumps({"phone": phone, "params": params})
    payload = {"template": template, **plain, "data": encryptor.encrypt(secret, purpose=SMS_JOB_PURPOSE)}
    return outbox.add(session, SMS_JOB, payload | {"_scrub": ["data"]}, max_attempts=max_attempts)


def open_job_secret(encryptor: Encryptor, data: str) -> dict[str, Any]:
    """Decrypt the phone and template parameters of an SMS job."""
    return json.loads(encryptor.decrypt(data, purpose=SMS_JOB_PURPOSE))


LIVE_CODES = 10  # a number has at most 10 codes a day (the provider's limit): all are looked at


def _challenge_for(
    session: Session, *, lookup: str, asker: str, challenge_id: str | None, now: datetime
) -> tuple[SmsChallenge | None, bool, list[SmsChallenge]]:
    """The challenge a login counts against, whether the caller asked for it, and the live codes
    the typed one may open. With `challenge_id` (the app kept it from the send): that one, if it
    is this number's. Otherwise: the latest live code this address asked for (or one asked for
    before askers were kept), else the number's latest live one (someone else's: a stranger's,
    or the citizen's from another address); the code typed may open any live code of the number,
    since each was delivered to the phone (a resend from 4G typed back on Wi-Fi; a send retried
    from another network after its answer was lost, whose first code arrived first)."""
    live = list(
        session.scalars(
            select(SmsChallenge)
            .where(
                SmsChallenge.phone_lookup == lookup,
                SmsChallenge.consumed_at.is_(None),
                SmsChallenge.expires_at > now,
            )
            .order_by(SmsChallenge.created_at.desc())
            .limit(LIVE_CODES)
        )
    )
    if challenge_id is not None:  # another number's (the number typed anew) names nothing
        row = session.get(SmsChallenge, challenge_id) if is_id(challenge_id) else None
        if row is not None and row.phone_lookup == lookup:
            return row, True, live
    mine = [row for row in live if row.requested_by in (asker, None)]
    if mine:
        return mine[0], True, live
    if live:
        return live[0], False, live
    # None live: the latest tells why (burned by wrong guesses, or used or expired).
    row = session.scalar(
        select(SmsChallenge)
        .where(SmsChallenge.phone_lookup == lookup)
        .order_by(SmsChallenge.created_at.desc())
        .limit(1)
    )
    return row, row is not None and row.requested_by in (asker, None), []


def _check_code(
    session: Session,
    *,
    hasher: LookupHasher,
    policy: OtpPolicy,
    lookup: str,
    code: str,
    asker: str,
    challenge_id: str | None = None,
) -> SmsChallenge:
    """The challenge `code` opens, consumed; every failure is committed before it is raised.

    Wrong codes from whoever asked for the challenge count in `attempts` and the last one burns
    it; wrong codes from anyone else count in `stray_attempts` and, once those are used up, stop
    everyone but the asker (the right code included: guessing stays bounded), never burning it.
    """
    now = clock.now()
    challenge, own, live = _challenge_for(
        session, lookup=lookup, asker=asker, challenge_id=challenge_id, now=now
    )
    if challenge is None:
        raise OtpExpired()
    counter = SmsChallenge.attempts if own else SmsChallenge.stray_attempts
    used = challenge.attempts if own else challenge.stray_attempts
    if challenge not in live:  # used, replaced, expired or burned (as the database has it now)
        raise (
            OtpTooManyAttempts()
            if challenge.consumed_at is None and used >= policy.max_attempts
            else OtpExpired()
        )
    if challenge.consumed_at is None and used >= policy.max_attempts:
        raise OtpTooManyAttempts()
    if challenge.consumed_at is not None or challenge.expires_at <= now:
        raise OtpExpired()
    opened = next(
        (
            row for row in live
            if row.attempts < policy.max_attempts
            and constant_time_equal(_code_hash(hasher, row.id, code), row.code_hash)
        ),
        None,
    )  # fmt: skip
    if opened is None:
        # Count in the database, not on the loaded row, and read the count this guess made in
        # the same statement (RETURNING): concurrent wrong guesses each take exactly one attempt
        # and each is told its own remainder (4, 3, ...), never the same one twice. A guess the
        # conditional update refuses (the attempts are used up) is no attempt at all.
        attempts = session.execute(
            update(SmsChallenge)
            .where(
                SmsChallenge.id == challenge.id,
                SmsChallenge.consumed_at.is_(None),
                counter < policy.max_attempts,
            )
            .values({counter: counter + 1})
            .returning(counter)
        ).scalar()
        session.commit()
        remaining = policy.max_attempts - attempts if attempts is not None else 0
        if remaining <= 0:
            if own:  # burned: also end its lifetime so a delivery job still queued will not send it
                session.execute(
                    update(SmsChallenge).where(SmsChallenge.id == challenge.id).values(expires_at=now)
                )
                session.commit()
            raise OtpTooManyAttempts()
        raise OtpInvalid(remaining=remaining, details={"remaining_attempts": remaining})
    # Of two logins with the same code, only the one whose update matches may continue.
    consumed = session.execute(
        update(SmsChallenge)
        .where(
            SmsChallenge.id == opened.id,
            SmsChallenge.consumed_at.is_(None),
            SmsChallenge.attempts < policy.max_attempts,
            SmsChallenge.expires_at > now,
        )
        .values(consumed_at=now)
    ).rowcount
    if consumed != 1:
        session.rollback()
        raise OtpExpired()
    return opened


def verify_and_login(
    session: Session,
    *,
    encryptor: Encryptor,
    hasher: LookupHasher,
    ratelimiter: RateLimiter,
    tokens: TokenService,
    session_policy: sessions.SessionPolicy,
    policy: OtpPolicy,
    phone: str,
    code: str,
    ip: str,
    device_label: str | None = None,
    request_id: str | None = None,
    challenge_id: str | None = None,
) -> SmsLogin:
    """Check the latest code sent to `phone` and log in (creating the account on first use). Commits.

    Raises RateLimited, InvalidPhone, OtpInvalid (with the attempts left), OtpTooManyAttempts
    (the code is burned) or OtpExpired (expired, replaced or already used).
    """
    account, created = verify_code(
        session, encryptor=encryptor, hasher=hasher, ratelimiter=ratelimiter, policy=policy,
        phone=phone, code=code, ip=ip, request_id=request_id, where="app", challenge_id=challenge_id,
    )  # fmt: skip
    pair = sessions.start_session(
        session, tokens=tokens, policy=session_policy, account=account,
        channel=CHANNEL_APP, device_label=device_label,
    )  # fmt: skip
    return SmsLogin(pair, created)


def verify_code(
    session: Session,
    *,
    encryptor: Encryptor,
    hasher: LookupHasher,
    ratelimiter: RateLimiter,
    policy: OtpPolicy,
    phone: str,
    code: str,
    ip: str,
    request_id: str | None,
    where: str,
    challenge_id: str | None = None,
) -> tuple[Account, bool]:
    """Consume the code and find (or create) the account of `phone`; audited as a login `where`
    (app, or oauth_page for the third-party sign-in page). `challenge_id`: the one the send
    answered, naming the code as the caller's own wherever they are now. The caller commits."""
    ratelimiter.hit("sms-login-ip", ip, limit=policy.login_per_ip_per_minute, window=60)
    number = normalize_phone(phone)
    lookup = accounts.phone_lookup(hasher, number)
    accounts.hold_phone_account(session, hasher=hasher, phone=number)
    challenge = _check_code(
        session, hasher=hasher, policy=policy, lookup=lookup, code=code, asker=_asker(hasher, ip),
        challenge_id=challenge_id,
    )  # fmt: skip
    account, created = accounts.login_phone(session, encryptor=encryptor, hasher=hasher, phone=number)
    audit.record(
        session, actor_type="citizen", actor_id=account.id, action="auth.login",
        target_type="account", target_id=account.id, ip=ip, request_id=request_id,
        details={"method": "sms_otp", "challenge_id": challenge.id, "new_account": created, "where": where},
    )  # fmt: skip
    return account, created
