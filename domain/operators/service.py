"""Operator accounts: creation, password + TOTP login with lockout, unlock, roles and status."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.crypto import Encryptor
from core.db import is_id, take_write_lock
from core.errors import AppError, RateLimited, Text
from core.ratelimit import RateLimiter
from core.tokens import TokenService
from domain.appointments.models import Hall
from domain.catalog.models import Department
from domain.operators import credentials, sessions
from domain.operators.audit_log import Actor, record
from domain.operators.errors import (
    AdminSessionRevoked,
    InvalidStatus,
    InvalidUsername,
    LastAdmin,
    LoginFailed,
    NewTotpCodeInvalid,
    OperatorDisabled,
    OperatorLocked,
    OperatorNotFound,
    PasswordUnchanged,
    ReauthFailed,
    ResetOwnCredentials,
    TotpEnrolmentNotNeeded,
    TotpEnrolmentRequired,
    UnknownRole,
    UnknownScope,
    UsernameTaken,
)
from domain.operators.models import ROLE_ADMIN, ROLES, Operator, OperatorSession
from domain.operators.sessions import ACTIVE, DISABLED, OperatorPolicy

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,63}$")
STATUSES = (ACTIVE, DISABLED)


@dataclass
class NewOperator:
    """A created operator and its TOTP secret, which is shown exactly once."""

    operator: Operator
    totp_secret: str
    totp_uri: str


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


@dataclass
class AdminLogin:
    access_token: str
    expires_in: int
    idle_timeout: int
    session_id: str
    operator: Operator


def _clean_roles(roles: list[str]) -> list[str]:
    cleaned: list[str] = []
    for role in roles:
        if role not in ROLES:
            raise UnknownRole(
                fields={"roles": [Text(f"unknown role {role!r}", f"未知的角色：{role}")]}, role=role
            )
        if role not in cleaned:
            cleaned.append(role)
    if not cleaned:
        raise UnknownRole(
            fields={"roles": [Text("at least one role is required", "至少选择一个角色")]}, role=""
        )
    return cleaned


def _clean_scope(
    session: Session, hall_ids: list[str] | None, department_codes: list[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    """The halls and departments given, each once in the order given, every one existing:
    422 `admin.scope_unknown` naming each unknown one (`hall_ids.1`, `department_codes.0`)."""
    problems: dict[str, list[Text]] = {}
    cleaned: list[list[str] | None] = []
    for field, values, column, what in (
        ("hall_ids", hall_ids, Hall.id, Text("No such hall", "没有这个办事大厅")),
        ("department_codes", department_codes, Department.code, Text("No such department", "没有这个部门")),
    ):
        if values is None:
            cleaned.append(None)
            continue
        wanted = list(dict.fromkeys(values))
        # Only values that could be keys are asked about (a hall id is an id; a NUL names nothing).
        askable = [v for v in wanted if isinstance(v, str) and 0 < len(v) <= 36 and "\x00" not in v]
        known = set(session.scalars(select(column).where(column.in_(askable)))) if askable else set()
        for i, value in enumerate(values):
            if value not in known:
                problems[f"{field}.{i}"] = [what]
        cleaned.append(wanted)
    if problems:
        raise UnknownScope(fields=problems)
    return cleaned[0], cleaned[1]


def create_operator(
    session: Session,
    *,
    encryptor: Encryptor,
    actor: Actor,
    username: str,
    display_name: str,
    password: str,
    roles: list[str],
    hall_ids: list[str] | None = None,
    department_codes: list[str] | None = None,
    must_change_password: bool = False,
) -> NewOperator:
    """Create an operator with an argon2 password and a new TOTP secret, optionally tied to
    halls and departments (each must exist: 422 `admin.scope_unknown`). `must_change_password`:
    the password is one someone else chose (an admin's), so the operator must replace it before
    doing anything else; callers decide (the admin API always, the CLI unless it bootstraps the
    first admin). Commits."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise InvalidUsername(
            fields={
                "username": [Text("3-64 of a-z 0-9 . _ -", "3-64 个字符，只可使用小写字母、数字及 . _ -")]
            }
        )
    credentials.check_password_policy(password, username=username)
    roles = _clean_roles(roles)
    hall_ids, department_codes = _clean_scope(session, hall_ids, department_codes)
    if session.scalar(select(Operator.id).where(Operator.username == username)) is not None:
        raise UsernameTaken()
    secret = credentials.new_totp_secret()
    operator = Operator(
        username=username,
        display_name=display_name.strip()[:64],
        password_hash=credentials.hash_password(password),
        totp_secret_enc=credentials.encrypt_totp_secret(encryptor, secret),
        totp_last_step=0,
        roles=roles,
        hall_ids=hall_ids or [],
        department_codes=department_codes or [],
        status=ACTIVE,
        must_change_password=must_change_password,
        failed_attempts=0,
        created_at=clock.now(),
    )
    session.add(operator)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create took the name
        session.rollback()
        raise UsernameTaken() from exc
    record(session, actor, "operator.create", target_type="operator", target_id=operator.id,
           details={"roles": roles, "hall_ids": operator.hall_ids,
                    "department_codes": operator.department_codes,
                    "must_change_password": must_change_password})  # fmt: skip
    session.commit()
    return NewOperator(operator, secret, credentials.provisioning_uri(secret, username=username))


def _locked_for(operator: Operator) -> int:
    if operator.locked_until is None:
        return 0
    return math.ceil((operator.locked_until - clock.now()).total_seconds())


_FAILURES = "admin-login-failures"


def _ident(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:32]


def _count_failure(ratelimiter: RateLimiter, username: str, policy: OperatorPolicy) -> None:
    """Count a failed attempt under the username, whether or not an operator has it: real and
    unknown names lock on the same attempt, for the same time, and forget old failures alike
    (sliding window of the lockout period), so lockout does not reveal which usernames exist.
    Raises OperatorLocked on the attempt that locks."""
    try:
        ratelimiter.hit(_FAILURES, _ident(username), limit=max(1, policy.lockout_threshold - 1),
                        window=policy.lockout_seconds)  # fmt: skip
    except RateLimited as exc:
        raise OperatorLocked(retry_after=exc.params["retry_after"]) from None


def authenticate(
    session: Session,
    *,
    encryptor: Encryptor,
    policy: OperatorPolicy,
    actor: Actor,
    username: str,
    password: str,
    totp_code: str,
    ratelimiter: RateLimiter | None = None,
) -> Operator:
    """Check password and TOTP with lockout; every attempt is audited. Commits, also on failure."""
    username = (username or "").strip().lower()
    operator = session.scalar(select(Operator).where(Operator.username == username).with_for_update())
    if operator is None:
        try:
            if ratelimiter is not None:
                _count_failure(ratelimiter, username, policy)
        except OperatorLocked:
            record(session, actor, "admin.login", outcome="locked", details={"reason": "unknown_user"})
            session.commit()
            raise
        credentials.burn_password_check(password)
        record(session, actor, "admin.login", outcome="failed", details={"reason": "unknown_user"})
        session.commit()
        raise LoginFailed()
    as_operator = Actor("operator", operator.id, actor.ip, actor.request_id)

    def fail(error: AppError, outcome: str, reason: str) -> AppError:
        details = {"reason": reason, "failed_attempts": operator.failed_attempts}
        record(session, as_operator, "admin.login", target_type="operator", target_id=operator.id,
               outcome=outcome, details=details)  # fmt: skip
        session.commit()
        return error

    if _locked_for(operator) > 0:
        raise fail(OperatorLocked(retry_after=_locked_for(operator)), "locked", "locked")
    _expire_lock(operator)
    reason = _proof_problem(encryptor, operator, password, totp_code)
    if reason is not None:
        locked = _count_failed_proof(operator, ratelimiter, username, policy)
        raise fail(locked or LoginFailed(), "failed", reason)

    if operator.status != ACTIVE:
        raise fail(OperatorDisabled(), "denied", "disabled")
    operator.failed_attempts = 0
    operator.locked_until = None
    if ratelimiter is not None:
        ratelimiter.reset(_FAILURES, _ident(username))
    operator.last_login_at = clock.now()
    if credentials.needs_rehash(operator.password_hash):
        operator.password_hash = credentials.hash_password(password)
    # The session opens either way; the admin API then allows only the password change.
    details = {"must_change_password": True} if operator.must_change_password else None
    record(
        session, as_operator, "admin.login", target_type="operator", target_id=operator.id, details=details
    )
    session.commit()
    return operator


def login(
    session: Session,
    *,
    encryptor: Encryptor,
    tokens: TokenService,
    policy: OperatorPolicy,
    actor: Actor,
    username: str,
    password: str,
    totp_code: str,
    ratelimiter: RateLimiter | None = None,
) -> AdminLogin:
    """Authenticate an operator and open an admin session. Commits."""
    operator = authenticate(
        session, encryptor=encryptor, policy=policy, actor=actor, username=username,
        password=password, totp_code=totp_code, ratelimiter=ratelimiter,
    )  # fmt: skip
    token, sess = sessions.start_session(
        session, tokens=tokens, policy=policy, operator=operator, ip=actor.ip
    )
    return AdminLogin(token, policy.token_ttl, policy.idle_timeout, sess.id, operator)


def get_operator(session: Session, operator_id: str) -> Operator:
    """The operator with this id, or OperatorNotFound."""
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise OperatorNotFound()
    return operator


def find_by_username(session: Session, username: str) -> Operator:
    """The operator with this username, or OperatorNotFound."""
    operator = session.scalar(select(Operator).where(Operator.username == username.strip().lower()))
    if operator is None:
        raise OperatorNotFound()
    return operator


def list_operators(session: Session) -> list[Operator]:
    """Every operator, by username."""
    return list(session.scalars(select(Operator).order_by(Operator.username)))


def is_locked(operator: Operator) -> bool:
    """True while a lockout is running."""
    return _locked_for(operator) > 0


def unlock(
    session: Session, *, actor: Actor, operator_id: str, ratelimiter: RateLimiter | None = None
) -> Operator:
    """Lift a lockout and clear the failure counter (and the counted failures). Commits."""
    operator = get_operator(session, operator_id)
    was_locked = is_locked(operator)
    operator.locked_until = None
    operator.failed_attempts = 0
    if ratelimiter is not None:
        ratelimiter.reset(_FAILURES, _ident(operator.username))
    record(session, actor, "operator.unlock", target_type="operator", target_id=operator.id,
           details={"was_locked": was_locked})  # fmt: skip
    session.commit()
    return operator


def _active_admins(session: Session) -> list[Operator]:
    return [o for o in list_operators(session) if o.status == ACTIVE and ROLE_ADMIN in (o.roles or ())]


def has_active_admin(session: Session) -> bool:
    """Whether some active operator holds the admin role (none yet: the CLI bootstraps one)."""
    return bool(_active_admins(session))


def update_operator(
    session: Session,
    *,
    actor: Actor,
    operator_id: str,
    roles: list[str] | None = None,
    status: str | None = None,
    hall_ids: list[str] | None = None,
    department_codes: list[str] | None = None,
) -> Operator:
    """Change roles, status, halls and/or departments (an empty list lifts that restriction;
    unknown halls or departments are 422 `admin.scope_unknown`, nothing changed); disabling
    ends the operator's sessions. Every change is audited (`operator.update`, from and to).
    A scope applies from the operator's next request. Commits.

    Operator changes are made one at a time (every operator row locked, in id order): the
    last-admin rule reads them all, and two admins disabling each other at once would each
    have seen the other still active and both committed, leaving no admin."""
    take_write_lock(session, Operator.__table__, Operator.id.is_not(None))
    session.scalars(
        select(Operator).order_by(Operator.id).with_for_update().execution_options(populate_existing=True)
    ).all()
    operator = get_operator(session, operator_id)
    # Everything checked before anything changes: a refused update leaves the row as it was.
    roles = _clean_roles(roles) if roles is not None else None
    if status is not None and status not in STATUSES:
        listed = ", ".join(STATUSES)
        raise InvalidStatus(
            fields={"status": [Text(f"one of {listed}", f"应为以下之一：{listed}")]}, value=status
        )
    hall_ids, department_codes = _clean_scope(session, hall_ids, department_codes)
    changes: dict[str, object] = {}
    wanted = {"roles": roles, "status": status, "hall_ids": hall_ids, "department_codes": department_codes}
    for name, value in wanted.items():
        current = getattr(operator, name)
        current = list(current or ()) if name != "status" else current
        if value is not None and value != current:
            changes[name] = {"from": current, "to": value}
            setattr(operator, name, value)
    session.flush()
    if changes and not _active_admins(session):
        session.rollback()
        raise LastAdmin()
    if changes.get("status") and operator.status == DISABLED:
        changes["sessions_ended"] = sessions.revoke_all(session, operator_id=operator.id)
    record(session, actor, "operator.update", target_type="operator", target_id=operator.id, details=changes)
    session.commit()
    return operator


def _expire_lock(operator: Operator) -> None:
    """A lock that has run out gives a fresh set of attempts."""
    if operator.locked_until is not None:
        operator.locked_until = None
        operator.failed_attempts = 0


def _proof_problem(encryptor: Encryptor, operator: Operator, password: str, totp_code: str) -> str | None:
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


def _count_failed_proof(
    operator: Operator, ratelimiter: RateLimiter | None, username: str, policy: OperatorPolicy
) -> OperatorLocked | None:
    """Count a failed proof; the lock it brings about, if any (the Redis window decides, or,
    without Redis, the count in the row)."""
    operator.failed_attempts += 1  # for the audit trail; the limiter decides the lock
    if ratelimiter is not None:
        try:
            _count_failure(ratelimiter, username, policy)
        except OperatorLocked as locked:
            operator.locked_until = clock.now() + timedelta(seconds=int(locked.params["retry_after"]))
            return locked
        return None
    if operator.failed_attempts >= policy.lockout_threshold:
        operator.locked_until = clock.now() + timedelta(seconds=policy.lockout_seconds)
        return OperatorLocked(retry_after=policy.lockout_seconds)
    return None


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
    encryptor: Encryptor, operator: Operator, new_totp_code: str | None
) -> tuple[str | None, int]:
    """For an operator who must change an admin's password: the pending secret (encrypted) and
    the step of `new_totp_code` in it; 409 `admin.totp_enrolment_required` without a pending
    secret, 422 `admin.totp_code_invalid` for a wrong or missing code. (None, 0) otherwise."""
    if not operator.must_change_password:
        return None, 0
    if operator.totp_pending_enc is None:
        raise TotpEnrolmentRequired(details={"new_totp": "/admin/v1/me/totp"})
    secret = credentials.decrypt_totp_secret(encryptor, operator.totp_pending_enc)
    step = credentials.match_totp_step(secret, new_totp_code or "", timestamp=clock.timestamp())
    if step is None:
        raise NewTotpCodeInvalid(
            fields={"new_totp_code": [Text("a current code of the new secret", "新密钥的当前动态口令")]}
        )
    return operator.totp_pending_enc, step


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
    if _locked_for(operator) > 0:
        raise refuse(OperatorLocked(retry_after=_locked_for(operator)), "locked")
    # Then the rules: a too-short or unchanged new password is 422 without counting as a failed
    # proof. Comparing the two given strings reveals nothing; a wrong current password fails the
    # proof below, and a right one is the stored password, so equal strings are the same password.
    credentials.check_password_policy(new_password, username=operator.username)
    if hmac.compare_digest(new_password.encode(), current_password.encode()):
        raise PasswordUnchanged(
            fields={"new_password": [Text("must differ from the current password", "不能与当前密码相同")]}
        )
    new_secret, new_step = _new_totp_proof(encryptor, operator, new_totp_code)
    _expire_lock(operator)  # as at login
    reason = _proof_problem(encryptor, operator, current_password, totp_code)
    if reason is not None:
        locked = _count_failed_proof(operator, ratelimiter, operator.username, policy)
        raise refuse(locked or ReauthFailed(), reason)
    operator.password_hash = credentials.hash_password(new_password)
    was_required = bool(operator.must_change_password)
    operator.must_change_password = False
    if new_secret is not None:
        operator.totp_secret_enc = new_secret
        operator.totp_pending_enc = None
        operator.totp_last_step = new_step  # the new code is used up too
    operator.failed_attempts = 0
    operator.locked_until = None
    if ratelimiter is not None:
        ratelimiter.reset(_FAILURES, _ident(operator.username))
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
    operator.totp_pending_enc = None  # one asked for before this reset: the operator asks again
    operator.must_change_password = True
    operator.failed_attempts = 0
    operator.locked_until = None
    if ratelimiter is not None:
        ratelimiter.reset(_FAILURES, _ident(operator.username))
    ended = sessions.revoke_all(session, operator_id=operator.id)
    record(session, actor, "operator.credentials_reset", target_type="operator", target_id=operator.id,
           details={"sessions_ended": ended, "totp": "replaced", "must_change_password": True})  # fmt: skip
    session.commit()
    uri = credentials.provisioning_uri(secret, username=operator.username)
    return ResetCredentials(operator, secret, uri, ended)
