"""SMS one-time codes in the domain: storage, attempts, replacement and concurrent use."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import RateLimited
from core.outbox.models import OutboxJob
from domain.auth import sms_login
from domain.auth.errors import OtpExpired, OtpInvalid, OtpTooManyAttempts
from domain.auth.models import SmsChallenge

PHONE = "13712345678"


@pytest.fixture
def policy(app):
    return sms_login.OtpPolicy.from_config(app.config)


@pytest.fixture
def fixed_code(monkeypatch):
    monkeypatch.setattr(sms_login, "new_code", lambda: "123456")
    return "123456"


def _send(session, services, policy, phone=PHONE, ip="10.0.0.1"):
    return sms_login.send_code(
        session, encryptor=services.encryptor, hasher=services.hasher, ratelimiter=services.ratelimiter,
        policy=policy, phone=phone, ip=ip,
    )  # fmt: skip


def _login(session, services, policy, code, phone=PHONE, ip="10.0.0.1"):
    return sms_login.verify_and_login(
        session, encryptor=services.encryptor, hasher=services.hasher, ratelimiter=services.ratelimiter,
        tokens=services.tokens, session_policy=services.citizen_policy, policy=policy,
        phone=phone, code=code, ip=ip,
    )  # fmt: skip


def test_policy_reads_the_configured_limits(policy):
    assert (policy.ttl, policy.max_attempts, policy.min_interval, policy.per_phone_per_hour) == (
        300,
        5,
        60,
        3,
    )
    assert (policy.per_phone_total_per_hour, policy.per_phone_total_per_day) == (5, 10)
    assert (policy.per_ip_per_hour, policy.login_per_ip_per_minute) == (20, 30)


def test_codes_are_six_random_digits():
    codes = {sms_login.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150


def test_code_is_stored_as_a_keyed_hash_bound_to_its_challenge(db_session, services, policy, fixed_code):
    a = _send(db_session, services, policy)
    b = _send(db_session, services, policy, phone="13712345679")
    ha, hb = (db_session.get(SmsChallenge, s.challenge_id).code_hash for s in (a, b))
    # Same code, different challenges: different hashes, and none a plain digest of 6 digits.
    assert ha != hb
    for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5):
        assert digest(fixed_code.encode()).hexdigest() not in (ha, hb)
    assert fixed_code not in ha
    assert _login(db_session, services, policy, fixed_code).new_account is True


def test_a_failed_attempt_is_counted_even_when_the_request_rolls_back(
    db_session, services, policy, fixed_code
):
    sent = _send(db_session, services, policy)
    with pytest.raises(OtpInvalid) as exc:
        _login(db_session, services, policy, "654321")
    assert exc.value.params["remaining"] == 4
    db_session.rollback()  # what the request teardown does after an error
    db.session.remove()
    assert db.session().get(SmsChallenge, sent.challenge_id).attempts == 1


def test_fifth_wrong_attempt_burns_the_code_and_stops_its_delivery(db_session, services, policy, fixed_code):
    sent = _send(db_session, services, policy)
    for _ in range(4):
        with pytest.raises(OtpInvalid):
            _login(db_session, services, policy, "000000")
    with pytest.raises(OtpTooManyAttempts):
        _login(db_session, services, policy, "000000")
    with pytest.raises(OtpTooManyAttempts):
        _login(db_session, services, policy, fixed_code)
    assert not sms_login.challenge_is_live(db_session, sent.challenge_id)


def test_two_logins_racing_with_one_code_only_one_wins(app, services, policy, fixed_code):
    factory = db.session.session_factory
    first, second = factory(), factory()
    try:
        _send(first, services, policy)
        # The second request has already read the challenge as unused when the first consumes it.
        seen = second.scalars(select(SmsChallenge)).one()  # kept: the identity map is weak
        second.commit()
        assert _login(first, services, policy, fixed_code).tokens.access_token
        assert seen.consumed_at is None  # still the stale view when the second login runs
        with pytest.raises(OtpExpired):
            _login(second, services, policy, fixed_code)
    finally:
        first.close()
        second.close()


def test_a_new_code_replaces_the_open_one(db_session, services, policy, clock):
    old = _send(db_session, services, policy)
    clock.advance(61)
    new = _send(db_session, services, policy)
    assert not sms_login.challenge_is_live(db_session, old.challenge_id)
    assert sms_login.challenge_is_live(db_session, new.challenge_id)


def test_a_rate_limited_send_writes_nothing(db_session, services, policy):
    _send(db_session, services, policy)
    with pytest.raises(RateLimited):
        _send(db_session, services, policy)
    assert db_session.scalar(select(func.count()).select_from(SmsChallenge)) == 1
    assert db_session.scalar(select(func.count()).select_from(OutboxJob)) == 1


def test_rate_limit_keys_do_not_contain_the_phone_number(db_session, services, policy):
    from core.redis import get_redis

    _send(db_session, services, policy)
    keys = [k.decode() if isinstance(k, bytes) else k for k in get_redis().keys("*")]
    assert any(k.startswith("rl:sms-send-phone") for k in keys)
    assert not any(PHONE in k for k in keys)
