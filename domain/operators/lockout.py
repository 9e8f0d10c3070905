"""Operators' login lockout and proofs: a password with a one-time code, failures counted per
username and address (in Redis; per username in the row without it), the lock they bring about
and its expiry.

Counted per username alone, anyone who knew an admin's username could keep that admin locked out
for good (five wrong logins every lockout period, from anywhere: the lock refused the right
password and code too). Counted per username and address, a stranger locks out only their own
address; guessing from many addresses is bounded by the one-time code and the per-address limits."""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from core import clock
from core.crypto import Encryptor
from core.errors import RateLimited
from core.ratelimit import RateLimiter
from domain.operators import credentials
from domain.operators.errors import OperatorLocked
from domain.operators.models import Operator
from domain.operators.sessions import OperatorPolicy

FAILURES = "admin-login-failures"


def _user(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:32]


def ident(username: str, ip: str | None) -> str:
    """The counter of one username tried from one address."""
    return f"{_user(username)}:{hashlib.sha256((ip or '-').encode()).hexdigest()[:16]}"


def check_not_locked(
    ratelimiter: RateLimiter | None, username: str, ip: str | None, policy: OperatorPolicy
) -> None:
    """Raise OperatorLocked while this address's failures for the username lock it, before any
    proof is looked at (a locked address learns nothing from a right password)."""
    if ratelimiter is None:
        return
    try:
        ratelimiter.check(FAILURES, ident(username, ip), limit=max(1, policy.lockout_threshold - 1),
                          window=policy.lockout_seconds)  # fmt: skip
    except RateLimited as exc:
        raise OperatorLocked(retry_after=exc.params["retry_after"]) from None


def locked_for(operator: Operator) -> int:
    if operator.locked_until is None:
        return 0
    return math.ceil((operator.locked_until - clock.now()).total_seconds())


def is_locked(operator: Operator) -> bool:
    """True while a lockout is running."""
    return locked_for(operator) > 0


def count_failure(ratelimiter: RateLimiter, username: str, ip: str | None, policy: OperatorPolicy) -> None:
    """Count a failed attempt under the username and address, whether or not an operator has the
    username: real and unknown names lock on the same attempt, for the same time, and forget old
    failures alike (sliding window of the lockout period), so lockout does not reveal which
    usernames exist. Raises OperatorLocked on the attempt that locks."""
    try:
        ratelimiter.hit(FAILURES, ident(username, ip), limit=max(1, policy.lockout_threshold - 1),
                        window=policy.lockout_seconds)  # fmt: skip
    except RateLimited as exc:
        raise OperatorLocked(retry_after=exc.params["retry_after"]) from None


def expire_lock(operator: Operator) -> None:
    """A lock that has run out gives a fresh set of attempts."""
    if operator.locked_until is not None:
        operator.locked_until = None
        operator.failed_attempts = 0


def proof_problem(encryptor: Encryptor, operator: Operator, password: str, totp_code: str) -> str | None:
    """Why a password and an authenticator code do not prove the operator (`bad_password`,
    `bad_totp`, `totp_replayed`), or None: then the code's step is used up (never accepted again)."""
    if not credentials.verify_password(operator.password_hash, password):
        return "bad_password"
    secret = credentials.decrypt_totp_secret(encryptor, operator.totp_secret_enc)
    step = credentials.match_totp_step(secret, totp_code, timestamp=clock.timestamp())
    if step is None:
        return "bad_totp"
    if step <= operator.totp_last_step:
        return "totp_replayed"
    operator.totp_last_step = step
    return None


def count_failed_proof(
    operator: Operator, ratelimiter: RateLimiter | None, username: str, ip: str | None, policy: OperatorPolicy
) -> OperatorLocked | None:
    """Count a failed proof; the lock it brings about, if any (the Redis window of this address
    decides, and locks only it; without Redis, the count in the row, for every address)."""
    operator.failed_attempts += 1  # for the audit trail; the limiter decides the lock
    if ratelimiter is not None:
        try:
            count_failure(ratelimiter, username, ip, policy)
        except OperatorLocked as locked:
            return locked
        return None
    if operator.failed_attempts >= policy.lockout_threshold:
        operator.locked_until = clock.now() + timedelta(seconds=policy.lockout_seconds)
        return OperatorLocked(retry_after=policy.lockout_seconds, everywhere=True)
    return None


def forget_failures(ratelimiter: RateLimiter | None, username: str, ip: str | None = None) -> None:
    """Drop the failures counted under the username: from `ip` (a login from there), or from
    every address (None: a password change, a reset, an unlock)."""
    if ratelimiter is None:
        return
    if ip is not None:
        ratelimiter.reset(FAILURES, ident(username, ip))
    else:
        ratelimiter.reset_all(FAILURES, _user(username) + ":")
