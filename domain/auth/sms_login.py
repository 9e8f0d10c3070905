"""App login with a one-time code sent by SMS: send a code, then verify it and open a session.

The code is never stored in the clear: the challenge keeps an HMAC keyed with the server's
lookup key and bound to the challenge id (six digits are too few for a plain hash), and the
outbox job that delivers it carries the phone and code encrypted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import Encryptor, LookupHasher, constant_time_equal
from core.db import new_id
from core.errors import RateLimited
from core.outbox import service as outbox
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


@dataclass(frozen=True)
class OtpPolicy:
    ttl: int
    max_attempts: int
    min_interval: int
    per_phone_per_hour: int
    per_ip_per_hour: int
    login_per_ip_per_minute: int

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
    RateLimited (per IP per hour, per phone per interval and per hour).
    """
    number = normalize_phone(phone)
    lookup = accounts.phone_lookup(hasher, number)
    # Rate-limit keys name the keyed hash, so Redis never holds the number itself. A request one
    # limit refuses counts against none: citizens sharing an address (a hall's Wi-Fi) do not lose
    # the address's sends to someone tapping "resend" too early, nor a number its sends to
    # requests the address's limit refused.
    limits = (
        ("sms-send-ip", ip, policy.per_ip_per_hour, 3600),
        ("sms-send-phone-interval", lookup, 1, policy.min_interval),
        ("sms-send-phone-hour", lookup, policy.per_phone_per_hour, 3600),
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
    # A new code replaces every earlier one still open for this number.
    session.execute(
        update(SmsChallenge)
        .where(
            SmsChallenge.phone_lookup == lookup,
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
    )
    challenge.code_hash = _code_hash(hasher, challenge.id, code)
    session.add(challenge)
    secret = json.dumps({"phone": number, "params": [code, str(max(1, policy.ttl // 60))]})
    job = outbox.add(
        session,
        SMS_JOB,
        {
            "template": OTP_TEMPLATE,
            "challenge_id": challenge.id,
            "data": encryptor.encrypt(secret, purpose=SMS_JOB_PURPOSE),
            "_scrub": ["data"],  # the phone and code are erased once the message is sent
        },
    )
    challenge.outbox_job_id = job.id
    session.commit()
    return CodeSent(policy.ttl, policy.min_interval, challenge.id, job.id)


def challenge_is_live(session: Session, challenge_id: str) -> bool:
    """Whether a code can still be used (not expired, replaced, used or burned)."""
    row = session.get(SmsChallenge, challenge_id)
    return bool(row and row.consumed_at is None and row.expires_at > clock.now())


def open_job_secret(encryptor: Encryptor, data: str) -> dict[str, Any]:
    """Decrypt the phone and template parameters of an SMS job."""
    return json.loads(encryptor.decrypt(data, purpose=SMS_JOB_PURPOSE))


def _check_code(
    session: Session, *, hasher: LookupHasher, policy: OtpPolicy, lookup: str, code: str
) -> SmsChallenge:
    """The challenge `code` opens, consumed; every failure is committed before it is raised."""
    now = clock.now()
    challenge = session.scalar(
        select(SmsChallenge)
        .where(SmsChallenge.phone_lookup == lookup)
        .order_by(SmsChallenge.created_at.desc())
        .limit(1)
    )
    if challenge is None:
        raise OtpExpired()
    if challenge.consumed_at is None and challenge.attempts >= policy.max_attempts:
        raise OtpTooManyAttempts()
    if challenge.consumed_at is not None or challenge.expires_at <= now:
        raise OtpExpired()
    if not constant_time_equal(_code_hash(hasher, challenge.id, code), challenge.code_hash):
        # Count in the database, not on the loaded row, and read the count this guess made in
        # the same statement (RETURNING): concurrent wrong guesses each take exactly one attempt
        # and each is told its own remainder (4, 3, ...), never the same one twice. A guess the
        # conditional update refuses (the attempts are used up) is no attempt at all.
        attempts = session.execute(
            update(SmsChallenge)
            .where(
                SmsChallenge.id == challenge.id,
                SmsChallenge.consumed_at.is_(None),
                SmsChallenge.attempts < policy.max_attempts,
            )
            .values(attempts=SmsChallenge.attempts + 1)
            .returning(SmsChallenge.attempts)
        ).scalar()
        session.commit()
        remaining = policy.max_attempts - attempts if attempts is not None else 0
        if remaining <= 0:
            # Burned: also end its lifetime so a delivery job still queued will not send it.
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
            SmsChallenge.id == challenge.id,
            SmsChallenge.consumed_at.is_(None),
            SmsChallenge.attempts < policy.max_attempts,
            SmsChallenge.expires_at > now,
        )
        .values(consumed_at=now)
    ).rowcount
    if consumed != 1:
        session.rollback()
        raise OtpExpired()
    return challenge


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
) -> SmsLogin:
    """Check the latest code sent to `phone` and log in (creating the account on first use). Commits.

    Raises RateLimited, InvalidPhone, OtpInvalid (with the attempts left), OtpTooManyAttempts
    (the code is burned) or OtpExpired (expired, replaced or already used).
    """
    account, created = verify_code(
        session, encryptor=encryptor, hasher=hasher, ratelimiter=ratelimiter, policy=policy,
        phone=phone, code=code, ip=ip, request_id=request_id, where="app",
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
) -> tuple[Account, bool]:
    """Consume the code and find (or create) the account of `phone`; audited as a login `where`
    (app, or oauth_page for the third-party sign-in page). The caller commits."""
    ratelimiter.hit("sms-login-ip", ip, limit=policy.login_per_ip_per_minute, window=60)
    number = normalize_phone(phone)
    lookup = accounts.phone_lookup(hasher, number)
    challenge = _check_code(session, hasher=hasher, policy=policy, lookup=lookup, code=code)
    account, created = accounts.login_phone(session, encryptor=encryptor, hasher=hasher, phone=number)
    audit.record(
        session, actor_type="citizen", actor_id=account.id, action="auth.login",
        target_type="account", target_id=account.id, ip=ip, request_id=request_id,
        details={"method": "sms_otp", "challenge_id": challenge.id, "new_account": created, "where": where},
    )  # fmt: skip
    return account, created
