"""Operators' own credentials after an admin's reset: the reset itself, the new TOTP secret the
operator asks for, and the password change that replaces both."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import clock
from core.crypto import Encryptor
from core.db import is_id, take_write_lock
from core.errors import AppError, Text
from core.ratelimit import RateLimiter
from domain.operators import credentials, sessions
from domain.operators.audit_log import Actor, record
from domain.operators.errors import (
    AdminSessionRevoked,
    NewTotpCodeInvalid,
    OperatorLocked,
    OperatorNotFound,
    PasswordUnchanged,
    ReauthFailed,
    ResetOwnCredentials,
    TotpEnrolmentExpired,
    TotpEnrolmentNotNeeded,
    TotpEnrolmentRequired,
)
from domain.operators.lockout import (
    check_not_locked,
    count_failed_proof,
    expire_lock,
    forget_failures,
    locked_for,
    proof_problem,
)
from domain.operators.models import Operator, OperatorSession
from domain.operators.sessions import OperatorPolicy


@dataclass
class ResetCredentials:
    """An operator after an admin's reset: the new TOTP secret is shown exactly once."""

    operator: Operator
    totp_secret: str
    totp_uri: str
    sessions_ended: int


@dataclass
class NewTotp:
    """A TOTP secret an operator asked for, shown exactly once; it replaces the current one when
    the password change that clears `must_change_password` proves a code of it."""

    totp_secret: str
    totp_uri: str


def _locked_row(session: Session, operator_id: str) -> Operator:
    """The operator, its row locked for this transaction (PostgreSQL) and read afresh."""
    if not is_id(operator_id):  # a NUL byte or a thousand characters names no operator
        raise OperatorNotFound()
    take_write_lock(session, Operator.__table__, Operator.id == operator_id)
    operator = session.scalar(
        select(Operator).where(Operator.id == operator_id).with_for_update()
        .execution_options(populate_existing=True)
    )  # fmt: skip
    if operator is None:
        raise OperatorNotFound()
    return operator


def _new_totp_proof(
    encryptor: Encryptor, operator: Operator, new_totp_code: str | None, ttl: int
) -> tuple[str | None, int]:
    """For an operator who must change an admin's password: the pending secret (encrypted) and
    the step of `new_totp_code` in it; 409 `admin.totp_enrolment_required` without a pending
    secret, 409 `admin.totp_enrolment_expired` for one asked for more than `ttl` seconds ago
    (or before its time was kept), 422 `admin.totp_code_invalid` for a wrong or missing code.
    (None, 0) otherwise."""
    if not operator.must_change_password:
        return None, 0
    asked = operator.totp_pending_at
    if operator.totp_pending_enc is None and asked is None:
        raise TotpEnrolmentRequired(details={"new_totp": "/admin/v1/me/totp"})
    # A secret the sweeper erased once it expired keeps its time: still "expired", not "none".
    if operator.totp_pending_enc is None or asked is None or (clock.now() - asked).total_seconds() > ttl:
        raise TotpEnrolmentExpired(details={"new_totp": "/admin/v1/me/totp"}, minutes=max(1, ttl // 60))
    secret = credentials.decrypt_totp_secret(encryptor, operator.totp_pending_enc)
    step = credentials.match_totp_step(secret, new_totp_code or "", timestamp=clock.timestamp())
    if step is None:
        raise NewTotpCodeInvalid(
            fields={"new_totp_code": [Text("a current code of the new secret", "新密钥的当前动态口令")]}
        )
    return operator.totp_pending_enc, step


def purge_expired_pending_totp(session: Session, *, ttl: int) -> int:
    """Erase the pending TOTP secrets asked for more than `ttl` seconds ago (or before their time
    was kept): none can replace a secret any more, and an encrypted secret is not kept for
    nothing. Their time stays, so a late password change is still told the secret expired.
    Commits; how many went."""
    done = session.execute(
        update(Operator)
        .where(
            Operator.totp_pending_enc.is_not(None),
            (Operator.totp_pending_at.is_(None))
            | (Operator.totp_pending_at < clock.now() - timedelta(seconds=ttl)),
        )
        .values(totp_pending_enc=None)
    )
    session.commit()
    return int(done.rowcount or 0)


def request_new_totp(
    session: Session, *, encryptor: Encryptor, actor: Actor, operator_id: str, session_id: str
) -> NewTotp:
    """A new TOTP secret for an operator who must replace a password an admin chose (the admin
    saw the TOTP secret as well), kept pending (encrypted) until the password change that clears
    `must_change_password` proves a code of it and makes it the operator's secret. Asking again
    replaces the pending one. Without the flag: 409 `admin.totp_enrolment_not_needed`. Audited
    (never the secret); commits.

    The asking session is checked again under the row lock: a reset that committed after the
    request's token check ended it, and a secret handed to it would survive the reset."""
    operator = _locked_row(session, operator_id)
    asking = session.get(OperatorSession, session_id, populate_existing=True)
    if asking is None or asking.operator_id != operator.id or sessions.session_ended(asking, clock.now()):
        raise AdminSessionRevoked()
    if not operator.must_change_password:
        raise TotpEnrolmentNotNeeded()
    replaced = operator.totp_pending_enc is not None
    secret = credentials.new_totp_secret()
    operator.totp_pending_enc = credentials.encrypt_totp_secret(encryptor, secret)
    operator.totp_pending_at = clock.now()
    as_operator = Actor("operator", operator.id, actor.ip, actor.request_id)
    record(session, as_operator, "operator.totp_requested", target_type="operator", target_id=operator.id,
           details={"replaced_pending": replaced})  # fmt: skip
    session.commit()
    return NewTotp(secret, credentials.provisioning_uri(secret, username=operator.username))


def change_own_password(
    session: Session,
    *,
    encryptor: Encryptor,
    policy: OperatorPolicy,
    actor: Actor,
    operator_id: str,
    session_id: str,
    current_password: str,
    totp_code: str,
    new_password: str,
    new_totp_code: str | None = None,
    ratelimiter: RateLimiter | None = None,
) -> int:
    """The operator changes their own password, proving it with the current password and a TOTP
    code (a code already used is refused, as at login). A wrong proof is 403 `admin.reauth_failed`
    and counts towards the login lockout (a stolen token gives no free guesses); a locked operator
    gets 403 `admin.locked` before any other answer. The new password follows the password rule
    and must differ from the current one (422 `admin.password_unchanged`). It clears
    `must_change_password` (a password an admin chose); the admin saw the TOTP secret too, so then
    it also takes the secret the operator asked for (`request_new_totp`; none: 409
    `admin.totp_enrolment_required`) in place of the current one, proven by `new_totp_code`, a
    code of it (wrong or missing: 422 `admin.totp_code_invalid`); these refusals come before the
    proof and change nothing. The
    operator's other sessions end; the one making the change stays. Audited either way; commits.
    Returns how many sessions ended."""
    operator = _locked_row(session, operator_id)
    as_operator = Actor("operator", operator.id, actor.ip, actor.request_id)

    def refuse(error: AppError, reason: str) -> AppError:
        record(session, as_operator, "operator.password_change", target_type="operator",
               target_id=operator.id, outcome="failed", details={"reason": reason})  # fmt: skip
        session.commit()
        return error

    # A locked-out operator hears of the lockout (and how long it lasts) before anything else:
    # nothing else they could fix now would let the change through.
    if locked_for(operator) > 0:
        raise refuse(OperatorLocked(retry_after=locked_for(operator), everywhere=True), "locked")
    try:
        check_not_locked(ratelimiter, operator.username, as_operator.ip, policy)
    except OperatorLocked as locked:
        raise refuse(locked, "locked") from None
    # Then the rules: a too-short or unchanged new password is 422 without counting as a failed
    # proof. Comparing the two given strings reveals nothing; a wrong current password fails the
    # proof below, and a right one is the stored password, so equal strings are the same password.
    credentials.check_password_policy(new_password, username=operator.username)
    if hmac.compare_digest(new_password.encode(), current_password.encode()):
        raise PasswordUnchanged(
            fields={"new_password": [Text("must differ from the current password", "不能与当前密码相同")]}
        )
    new_secret, new_step = _new_totp_proof(encryptor, operator, new_totp_code, policy.totp_pending_ttl)
    expire_lock(operator)  # as at login
    reason = proof_problem(encryptor, operator, current_password, totp_code)
    if reason is not None:
        locked = count_failed_proof(operator, ratelimiter, operator.username, as_operator.ip, policy)
        raise refuse(locked or ReauthFailed(), reason)
    operator.password_hash = credentials.hash_password(new_password)
    was_required = bool(operator.must_change_password)
    operator.must_change_password = False
    if new_secret is not None:
        operator.totp_secret_enc = new_secret
        operator.totp_pending_enc = operator.totp_pending_at = None
        operator.totp_last_step = new_step  # the new code is used up too
    operator.failed_attempts = 0
    operator.locked_until = None
    forget_failures(ratelimiter, operator.username)
    ended = sessions.revoke_all(session, operator_id=operator.id, keep=session_id)
    details: dict[str, object] = {"sessions_ended": ended}
    if was_required:
        details["must_change_password"] = {"from": True, "to": False}
    if new_secret is not None:
        details["totp"] = "replaced"  # never the secret
    record(session, as_operator, "operator.password_change", target_type="operator", target_id=operator.id,
           details=details)  # fmt: skip
    session.commit()
    return ended


def reset_credentials(
    session: Session,
    *,
    encryptor: Encryptor,
    actor: Actor,
    operator_id: str,
    new_password: str,
    ratelimiter: RateLimiter | None = None,
) -> ResetCredentials:
    """An admin resets another operator's password and TOTP (forgotten password, lost phone): a
    new TOTP secret (shown once), every session of that operator ended, any lockout lifted. An
    admin's own credentials are changed with the current ones instead (409 `admin.reset_self`).
    The password follows the password rule; the admin knows it, so the operator must change it
    (`must_change_password`) before doing anything else. Audited; commits."""
    if operator_id == actor.id:
        raise ResetOwnCredentials()
    operator = _locked_row(session, operator_id)
    credentials.check_password_policy(new_password, username=operator.username)
    secret = credentials.new_totp_secret()
    operator.password_hash = credentials.hash_password(new_password)
    operator.totp_secret_enc = credentials.encrypt_totp_secret(encryptor, secret)
    operator.totp_last_step = 0
    operator.totp_pending_enc = operator.totp_pending_at = None  # asked for before this reset: ask again
    operator.must_change_password = True
    operator.failed_attempts = 0
    operator.locked_until = None
    forget_failures(ratelimiter, operator.username)
    ended = sessions.revoke_all(session, operator_id=operator.id)
    record(session, actor, "operator.credentials_reset", target_type="operator", target_id=operator.id,
           details={"sessions_ended": ended, "totp": "replaced", "must_change_password": True})  # fmt: skip
    session.commit()
    uri = credentials.provisioning_uri(secret, username=operator.username)
    return ResetCredentials(operator, secret, uri, ended)
