import pyotp
import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from domain.operators import credential_changes, service, sessions
from domain.operators.audit_log import Actor
from domain.operators.errors import (
    LastAdmin,
    LoginFailed,
    OperatorDisabled,
    OperatorLocked,
    ReauthFailed,
    UnknownRole,
    UsernameTaken,
)
from domain.operators.models import Operator, OperatorSession
from domain.operators.sessions import OperatorPolicy
from tests.domain.operators.factories import PASSWORD, TEST_ACTOR, make_operator

ACTOR = Actor("operator", None, "10.0.0.1", "req-test-0001")


@pytest.fixture
def policy(app):
    return OperatorPolicy.from_config(app.config)


def attempt(db_session, services, policy, op, *, password=PASSWORD, code=None, clock_ts=None, username=None):
    return service.authenticate(
        db_session, encryptor=services.encryptor, policy=policy, actor=ACTOR,
        username=username or op["username"], password=password,
        totp_code=code if code is not None else pyotp.TOTP(op["secret"]).at(clock_ts),
        ratelimiter=services.ratelimiter,
    )  # fmt: skip


def login_events(db_session):
    return list(db_session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.login")))


def test_secret_is_stored_encrypted_and_password_as_argon2(app, db_session):
    op = make_operator(app)
    row = db_session.get(Operator, op["id"])
    assert op["secret"] not in row.totp_secret_enc
    assert row.password_hash.startswith("$argon2id$")
    assert row.roles == ["admin"] and row.status == "active"


def test_create_rejects_duplicate_username_and_unknown_role(app, db_session, services):
    make_operator(app, username="alice")
    with pytest.raises(UsernameTaken):
        make_operator(app, username="Alice")
    with pytest.raises(UnknownRole):
        service.create_operator(
            db_session, encryptor=services.encryptor, actor=TEST_ACTOR, username="bob",
            display_name="Bob", password=PASSWORD, roles=["root"],
        )  # fmt: skip


def test_success_resets_the_failure_counter_and_is_audited(app, db_session, services, policy, clock):
    op = make_operator(app)
    with pytest.raises(LoginFailed):
        attempt(db_session, services, policy, op, password="wrong password!!", clock_ts=clock.time())
    assert db_session.get(Operator, op["id"]).failed_attempts == 1
    operator = attempt(db_session, services, policy, op, clock_ts=clock.time())
    assert operator.failed_attempts == 0 and operator.last_login_at is not None
    outcomes = sorted(e.outcome for e in login_events(db_session))
    assert outcomes == ["failed", "ok"]


def test_unknown_user_and_wrong_password_look_the_same(app, db_session, services, policy, clock):
    op = make_operator(app)
    with pytest.raises(LoginFailed) as wrong_password:
        attempt(db_session, services, policy, op, password="wrong password!!", clock_ts=clock.time())
    with pytest.raises(LoginFailed) as unknown:
        attempt(db_session, services, policy, op, username="nobody", clock_ts=clock.time())
    assert (wrong_password.value.status, wrong_password.value.code, wrong_password.value.message()) == (
        unknown.value.status, unknown.value.code, unknown.value.message(),
    )  # fmt: skip


def test_unknown_usernames_lock_on_the_same_attempt_as_real_ones(app, db_session, services, policy, clock):
    op = make_operator(app)

    def outcomes(username, password):
        seen = []
        for _ in range(policy.lockout_threshold + 1):
            try:
                attempt(db_session, services, policy, op, username=username, password=password,
                        clock_ts=clock.time())  # fmt: skip
                seen.append("ok")
            except (LoginFailed, OperatorLocked) as err:
                seen.append((err.code, err.headers.get("Retry-After")))
        return seen

    real, ghost = outcomes(op["username"], "wrong password!!"), outcomes("ghost", PASSWORD)
    assert real == ghost
    assert real[-1] == ("admin.locked", str(policy.lockout_seconds))
    assert real[policy.lockout_threshold - 2] == ("admin.login_failed", None)


def test_replayed_code_is_rejected(app, db_session, services, policy, clock):
    op = make_operator(app)
    code = pyotp.TOTP(op["secret"]).at(clock.time())
    attempt(db_session, services, policy, op, code=code)
    clock.advance(10)
    with pytest.raises(LoginFailed):
        attempt(db_session, services, policy, op, code=code)
    # The previous step's code is also spent once a later step was used.
    with pytest.raises(LoginFailed):
        attempt(db_session, services, policy, op, code=pyotp.TOTP(op["secret"]).at(clock.time() - 30))
    reasons = [e.details["reason"] for e in login_events(db_session) if e.outcome == "failed"]
    assert reasons == ["totp_replayed", "totp_replayed"]


def test_lockout_blocks_even_the_right_password_until_it_runs_out(app, db_session, services, policy, clock):
    op = make_operator(app)
    for _ in range(policy.lockout_threshold - 1):
        with pytest.raises(LoginFailed):
            attempt(db_session, services, policy, op, code="000000", clock_ts=None)
    with pytest.raises(OperatorLocked):
        attempt(db_session, services, policy, op, password="wrong password!!", clock_ts=clock.time())
    clock.advance(policy.lockout_seconds - 5)
    with pytest.raises(OperatorLocked) as err:
        attempt(db_session, services, policy, op, clock_ts=clock.time())
    assert err.value.headers["Retry-After"] == "5"
    clock.advance(6)
    assert attempt(db_session, services, policy, op, clock_ts=clock.time()).locked_until is None


def test_without_redis_an_expired_lock_gives_a_fresh_set_of_password_change_attempts(
    app, db_session, services, policy, clock
):
    """With no rate limiter the row counts the failures: once a lock has run out, one wrong
    current password is one failed attempt again (as at login), not another lockout at once."""
    op = make_operator(app)

    def change(password):
        return credential_changes.change_own_password(
            db_session, encryptor=services.encryptor, policy=policy, actor=ACTOR, operator_id=op["id"],
            session_id="this-desk", current_password=password,
            totp_code=pyotp.TOTP(op["secret"]).at(clock.time()), new_password="a brand new passphrase",
            ratelimiter=None,
        )  # fmt: skip

    for _ in range(policy.lockout_threshold - 1):
        with pytest.raises(ReauthFailed):
            change("wrong password!!")
    with pytest.raises(OperatorLocked) as locked:
        change("wrong password!!")
    # Without Redis the row's lock holds for every address: then the account is locked indeed.
    assert locked.value.message("en") == (
        "Too many failed logins; the account is locked for 15 minutes or until an admin unlocks it"
    )
    assert locked.value.message() == "登录失败次数过多，账号已锁定，请 15 分钟后再试或联系管理员解锁"
    clock.advance(policy.lockout_seconds + 1)
    for _ in range(policy.lockout_threshold - 1):
        with pytest.raises(ReauthFailed):
            change("wrong password!!")
    row = db_session.get(Operator, op["id"])
    assert row.locked_until is None and row.failed_attempts == policy.lockout_threshold - 1
    with pytest.raises(OperatorLocked):
        change("wrong password!!")
    clock.advance(policy.lockout_seconds + 1)
    assert change(PASSWORD) == 0
    row = db_session.get(Operator, op["id"])
    assert (row.failed_attempts, row.locked_until) == (0, None)


def test_disabled_operator_cannot_log_in(app, db_session, services, policy, clock):
    make_operator(app, username="root")
    op = make_operator(app, username="bob", roles=("ops",))
    service.update_operator(db_session, actor=TEST_ACTOR, operator_id=op["id"], status="disabled")
    with pytest.raises(OperatorDisabled):
        attempt(db_session, services, policy, op, clock_ts=clock.time())


def test_the_last_active_admin_cannot_be_removed(app, db_session):
    op = make_operator(app)
    with pytest.raises(LastAdmin):
        service.update_operator(db_session, actor=TEST_ACTOR, operator_id=op["id"], roles=["auditor"])
    with pytest.raises(LastAdmin):
        service.update_operator(db_session, actor=TEST_ACTOR, operator_id=op["id"], status="disabled")
    assert db_session.get(Operator, op["id"]).roles == ["admin"]


def test_disabling_ends_open_sessions(app, db_session, services, policy, clock):
    make_operator(app, username="root")
    op = make_operator(app, username="bob", roles=("ops",))
    operator = db_session.get(Operator, op["id"])
    sessions.start_session(db_session, tokens=services.tokens, policy=policy, operator=operator, ip=None)
    service.update_operator(db_session, actor=TEST_ACTOR, operator_id=op["id"], status="disabled")
    open_sessions = db_session.scalars(
        select(OperatorSession).where(
            OperatorSession.operator_id == op["id"], OperatorSession.revoked_at.is_(None)
        )
    ).all()
    assert open_sessions == []


def test_audit_never_holds_the_password_or_code(app, db_session, services, policy, clock):
    op = make_operator(app)
    code = pyotp.TOTP(op["secret"]).at(clock.time())
    with pytest.raises(LoginFailed):
        attempt(db_session, services, policy, op, password="wrong password!!", code=code)
    attempt(db_session, services, policy, op, code=code)
    text = repr([(e.details, e.target_id, e.actor_id) for e in db_session.scalars(select(AuditEvent))])
    assert "wrong password" not in text and PASSWORD not in text and code not in text
    assert op["secret"] not in text
