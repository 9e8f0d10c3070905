"""Operator accounts: creation, password + TOTP login with lockout, unlock, roles and status."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.crypto import Encryptor
from core.db import take_write_lock
from core.errors import AppError, Text
from core.ratelimit import RateLimiter
from core.text import has_visible_text
from core.tokens import TokenService
from domain.appointments.models import Hall
from domain.catalog.models import Department
from domain.operators import credentials, lockout, sessions
from domain.operators.audit_log import Actor, record
from domain.operators.errors import (
    DisableSelf,
    InvalidDisplayName,
    InvalidStatus,
    InvalidUsername,
    LastAdmin,
    LoginFailed,
    OperatorDisabled,
    OperatorLocked,
    OperatorNotFound,
    UnknownRole,
    UnknownScope,
    UsernameTaken,
)
from domain.operators.models import ROLE_ADMIN, ROLES, Operator
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


def _display_name(raw: str) -> str:
    """The name shown for an operator: spaces collapsed, at most 64 characters, something visible
    (a name of spaces or invisible characters names nobody in the audit trail)."""
    name = " ".join(raw.split())[:64]
    if not has_visible_text(name):
        raise InvalidDisplayName(
            fields={"display_name": [Text("must not be blank", "不能为空，也不能只有空格或不可见字符")]}
        )
    return name


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
        display_name=_display_name(display_name),
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
    operator = _check_login(
        session, encryptor=encryptor, policy=policy, actor=actor, username=username,
        password=password, totp_code=totp_code, ratelimiter=ratelimiter,
    )  # fmt: skip
    session.commit()
    return operator


def _check_login(
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
    """authenticate's checks, the operator's row locked; a failure is recorded and committed, a
    success recorded and left in the open transaction (its caller commits, the lock held until then)."""
    username = (username or "").strip().lower()
    operator = session.scalar(select(Operator).where(Operator.username == username).with_for_update())
    if operator is None:
        try:
            lockout.check_not_locked(ratelimiter, username, actor.ip, policy)
            if ratelimiter is not None:
                lockout.count_failure(ratelimiter, username, actor.ip, policy)
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

    if lockout.locked_for(operator) > 0:
        raise fail(
            OperatorLocked(retry_after=lockout.locked_for(operator), everywhere=True), "locked", "locked"
        )
    try:
        lockout.check_not_locked(ratelimiter, username, actor.ip, policy)
    except OperatorLocked as locked:
        raise fail(locked, "locked", "locked") from None
    lockout.expire_lock(operator)
    reason = lockout.proof_problem(encryptor, operator, password, totp_code)
    if reason is not None:
        locked = lockout.count_failed_proof(operator, ratelimiter, username, actor.ip, policy)
        raise fail(locked or LoginFailed(), "failed", reason)

    if operator.status != ACTIVE:
        raise fail(OperatorDisabled(), "denied", "disabled")
    operator.failed_attempts = 0
    operator.locked_until = None
    lockout.forget_failures(ratelimiter, username, actor.ip)
    operator.last_login_at = clock.now()
    if credentials.needs_rehash(operator.password_hash):
        operator.password_hash = credentials.hash_password(password)
    # The session opens either way; the admin API then allows only the password change.
    details = {"must_change_password": True} if operator.must_change_password else None
    record(
        session, as_operator, "admin.login", target_type="operator", target_id=operator.id, details=details
    )
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
    """Authenticate an operator and open an admin session. Commits.

    The session row is written in the transaction that checked the credentials, under the
    operator's row lock: a password change, reset or disable (each locks that row, then ends
    the operator's sessions) either comes first and this login fails, or comes after and ends
    this session too. A session written after the check's commit would outlive a change made in
    between, with the password it replaced."""
    operator = _check_login(
        session, encryptor=encryptor, policy=policy, actor=actor, username=username,
        password=password, totp_code=totp_code, ratelimiter=ratelimiter,
    )  # fmt: skip
    sess = sessions.add_session(session, policy=policy, operator=operator, ip=actor.ip)
    # Commit before minting: the key ring may write a first signing key in its own transaction.
    session.commit()
    token = sessions.mint_token(tokens, policy=policy, operator=operator, sess=sess)
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


def unlock(
    session: Session, *, actor: Actor, operator_id: str, ratelimiter: RateLimiter | None = None
) -> Operator:
    """Lift a lockout and clear the failure counter (and the counted failures). Commits."""
    operator = get_operator(session, operator_id)
    was_locked = lockout.is_locked(operator)
    operator.locked_until = None
    operator.failed_attempts = 0
    lockout.forget_failures(ratelimiter, operator.username)
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
    must_change_password: bool | None = None,
) -> Operator:
    """Change roles, status, halls and/or departments (an empty list lifts that restriction;
    unknown halls or departments are 422 `admin.scope_unknown`, nothing changed); disabling
    ends the operator's sessions (an operator cannot disable themselves: 409 `admin.disable_self`).
    `must_change_password=True` asks the operator to replace their password and TOTP secret
    before anything else (a suspected leak), from their next request; only their own change
    clears it. Every change is audited (`operator.update`, from and to).
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
    if (
        status == DISABLED
        and actor.type == "operator"
        and actor.id == operator.id
        and operator.status != DISABLED
    ):
        raise DisableSelf()  # their session would end mid-click, and only another admin could undo it
    hall_ids, department_codes = _clean_scope(session, hall_ids, department_codes)
    changes: dict[str, object] = {}
    wanted = {
        "roles": roles, "status": status, "hall_ids": hall_ids, "department_codes": department_codes,
        "must_change_password": True if must_change_password else None,
    }  # fmt: skip
    for name, value in wanted.items():
        current = getattr(operator, name)
        current = list(current or ()) if name in ("roles", "hall_ids", "department_codes") else current
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
