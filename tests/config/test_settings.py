"""Config classes from the environment; production refuses development secrets."""

from __future__ import annotations

import base64
import os

import pytest

from config.settings import ConfigError, load_config

STRONG = {
    "SECRET_KEY": "s" * 40,
    "DATA_KEYS": "k2026:" + base64.b64encode(os.urandom(16)).decode(),
    "LOOKUP_HASH_KEY": "h" * 40,
    "WECHAT_SECRET": "real-wechat-secret",
    "TENCENT_SECRET_KEY": "real-tencent-key",
    "DATABASE_URL": "postgresql://db.internal/yiwang",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "IDCHECK_APP_SECRET": "real-idcheck-secret-0123456789",
    "ALIPAY_APP_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nreal\n-----END PRIVATE KEY-----",
    "ALIPAY_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nreal\n-----END PUBLIC KEY-----",
    "PROVINCE_SECRET": "real-province-secret-0123456789",
    "PROVINCE_SM4_KEY": "00112233445566778899aabbccddeeff",
    "PROVINCE_SM2_PRIVATE_KEY": "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8",
    "APNS_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nreal\n-----END PRIVATE KEY-----",
    "SMS_RECEIPT_TOKEN": "real-sms-receipt-token-0123456789",
    "JPUSH_MASTER_SECRET": "real-jpush-master-secret",
    "HUAWEI_APP_SECRET": "real-huawei-app-secret",
    "SMS_SDK_APP_ID": "1400123456",
    "SMS_SIGN_NAME": "某省政务服务",
    "SMS_TEMPLATE_OTP": "2051234",
    "SMS_TEMPLATE_NOTICE": "2051235",
    "SMS_TEMPLATE_ACCOUNT_CLOSED": "2051236",
}


@pytest.fixture
def env(monkeypatch):
    for name in list(STRONG) + ["YIWANG_ENV", "DATA_KEY_ACTIVE"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_development_is_the_default_and_uses_embedded_servers(env):
    cfg = load_config()
    assert cfg.ENV_NAME == "development"
    assert cfg.DATABASE_URL.startswith("sqlite:///") and cfg.DATABASE_URL.endswith("yiwang.db")
    assert cfg.REDIS_URL is None


def test_production_refuses_default_secrets(env):
    env.setenv("YIWANG_ENV", "production")
    with pytest.raises(ConfigError) as exc:
        load_config()
    message = str(exc.value)
    for name in ("SECRET_KEY", "DATA_KEYS", "LOOKUP_HASH_KEY", "WECHAT_SECRET", "DATABASE_URL", "REDIS_URL"):
        assert name in message


@pytest.mark.parametrize(
    "weak",
    [
        "SECRET_KEY",
        "DATA_KEYS",
        "LOOKUP_HASH_KEY",
        "TENCENT_SECRET_KEY",
        "IDCHECK_APP_SECRET",
        "ALIPAY_PUBLIC_KEY",
        "APNS_PRIVATE_KEY",
        "SMS_RECEIPT_TOKEN",
        "JPUSH_MASTER_SECRET",
        "HUAWEI_APP_SECRET",
        "SMS_SDK_APP_ID",
        "SMS_SIGN_NAME",
        "SMS_TEMPLATE_OTP",
        "SMS_TEMPLATE_NOTICE",
        "SMS_TEMPLATE_ACCOUNT_CLOSED",
    ],  # fmt: skip
)
def test_production_refuses_each_default_on_its_own(env, weak):
    env.setenv("YIWANG_ENV", "production")
    for name, value in STRONG.items():
        if name != weak:
            env.setenv(name, value)
    with pytest.raises(ConfigError, match=weak):
        load_config()


def test_production_starts_with_real_secrets(env):
    env.setenv("YIWANG_ENV", "production")
    for name, value in STRONG.items():
        env.setenv(name, value)
    cfg = load_config()
    assert cfg.ENV_NAME == "production" and cfg.DATA_KEY_ACTIVE == "k2026"


def test_production_names_every_sms_setting_left_unset_at_once(env):
    # The SMS application and template ids are approved per account by the provider: the
    # simulator's would make every login code and notice fail at the provider, found only when
    # citizens cannot log in. Production refuses to start without them, naming them all.
    env.setenv("YIWANG_ENV", "production")
    sms = (
        "SMS_SDK_APP_ID",
        "SMS_SIGN_NAME",
        "SMS_TEMPLATE_OTP",
        "SMS_TEMPLATE_NOTICE",
        "SMS_TEMPLATE_ACCOUNT_CLOSED",
    )
    for name, value in STRONG.items():
        if name not in sms:
            env.setenv(name, value)
    with pytest.raises(ConfigError) as exc:
        load_config()
    assert all(name in str(exc.value) for name in sms)
    env.setenv("SMS_TEMPLATE_OTP", "  ")
    with pytest.raises(ConfigError, match="SMS_TEMPLATE_OTP"):
        load_config()


def test_unknown_environment_name(env):
    env.setenv("YIWANG_ENV", "staging-typo")
    with pytest.raises(ConfigError, match="unknown YIWANG_ENV"):
        load_config()


def test_active_key_must_exist(env):
    env.setenv("DATA_KEY_ACTIVE", "nope")
    with pytest.raises(ConfigError, match="DATA_KEY_ACTIVE"):
        load_config()


def test_idempotency_keys_are_kept_at_least_a_day(env):
    env.setenv("IDEMPOTENCY_TTL", "3600")
    with pytest.raises(ConfigError, match="IDEMPOTENCY_TTL"):
        load_config()
    env.setenv("IDEMPOTENCY_TTL", "172800")
    assert load_config().IDEMPOTENCY_TTL == 172800


@pytest.mark.parametrize("name", ["RECTIFY_WORKING_DAYS", "RECTIFY_DECIDE_WORKING_DAYS"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_rectification_periods_are_at_least_one_working_day(env, name, value):
    """A period below one working day would make every 差评 or every response a 422."""
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name} must be .* at least 1"):
        load_config()
    env.setenv(name, "1")
    assert getattr(load_config(), name) == 1


@pytest.mark.parametrize(("value", "decide"), [("-1", "5"), ("5", "5"), ("2", "2"), ("1", "1")])
def test_the_rectification_reminder_falls_within_the_period(env, value, decide):
    """A reminder on or before the response's own day, or a negative count, refuses to start."""
    env.setenv("RECTIFY_DECIDE_WORKING_DAYS", decide)
    env.setenv("RECTIFY_REMIND_WORKING_DAYS_BEFORE", value)
    with pytest.raises(ConfigError, match="RECTIFY_REMIND_WORKING_DAYS_BEFORE must be .* 0 .* one less"):
        load_config()


def test_the_rectification_reminder_defaults_to_the_working_day_before(env):
    assert load_config().RECTIFY_REMIND_WORKING_DAYS_BEFORE == 1
    env.setenv("RECTIFY_DECIDE_WORKING_DAYS", "1")  # no working day before a one-day period
    assert load_config().RECTIFY_REMIND_WORKING_DAYS_BEFORE == 0
    env.setenv("RECTIFY_DECIDE_WORKING_DAYS", "5")
    env.setenv("RECTIFY_REMIND_WORKING_DAYS_BEFORE", "2")
    assert load_config().RECTIFY_REMIND_WORKING_DAYS_BEFORE == 2
    env.setenv("RECTIFY_REMIND_WORKING_DAYS_BEFORE", "0")  # reminders off
    assert load_config().RECTIFY_REMIND_WORKING_DAYS_BEFORE == 0


def test_production_refuses_the_simulator_province_secrets(env):
    env.setenv("YIWANG_ENV", "production")
    for name, value in STRONG.items():
        if not name.startswith("PROVINCE_"):
            env.setenv(name, value)
    with pytest.raises(ConfigError, match="PROVINCE_SECRET and PROVINCE_SM4_KEY") as err:
        load_config()
    assert "PROVINCE_SM2_PRIVATE_KEY" in str(err.value)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_dead_jobs_keep_their_personal_data_at_least_a_day(env, value):
    """0 would erase what a replay needs before any operator could look at a dead job."""
    env.setenv("OUTBOX_DEAD_SCRUB_DAYS", value)
    with pytest.raises(ConfigError, match="OUTBOX_DEAD_SCRUB_DAYS must be .* from 1 to 30"):
        load_config()
    env.delenv("OUTBOX_DEAD_SCRUB_DAYS")
    assert load_config().OUTBOX_DEAD_SCRUB_DAYS == 7


@pytest.mark.parametrize("value", ["31", "36500"])
def test_dead_jobs_do_not_keep_personal_data_longer_than_a_month(env, value):
    """Kept for an operator's replay, not as an archive: a phone number and login code held for
    years in a dead job is personal data kept past its purpose."""
    env.setenv("OUTBOX_DEAD_SCRUB_DAYS", value)
    with pytest.raises(ConfigError, match="OUTBOX_DEAD_SCRUB_DAYS must be .* from 1 to 30"):
        load_config()
    env.setenv("OUTBOX_DEAD_SCRUB_DAYS", "30")
    assert load_config().OUTBOX_DEAD_SCRUB_DAYS == 30


@pytest.mark.parametrize("value", ["0", "91"])
def test_a_complaint_answer_is_rateable_between_a_day_and_three_months(env, value):
    env.setenv("COMPLAINT_RATE_DAYS", value)
    with pytest.raises(ConfigError, match="COMPLAINT_RATE_DAYS must be .* from 1 to 90"):
        load_config()
    env.setenv("COMPLAINT_RATE_DAYS", "90")
    assert load_config().COMPLAINT_RATE_DAYS == 90


@pytest.mark.parametrize(("value", "rate"), [("-1", "15"), ("15", "15"), ("20", "15"), ("1", "1")])
def test_the_complaint_rating_reminder_falls_within_the_period(env, value, rate):
    """A reminder on (or before) the answer's own day, or a negative count, refuses to start."""
    env.setenv("COMPLAINT_RATE_DAYS", rate)
    env.setenv("COMPLAINT_RATE_REMIND_DAYS_BEFORE", value)
    with pytest.raises(ConfigError, match="COMPLAINT_RATE_REMIND_DAYS_BEFORE must be .* 0 .* one less"):
        load_config()


def test_the_complaint_rating_reminder_defaults_to_three_days_before(env):
    assert load_config().COMPLAINT_RATE_REMIND_DAYS_BEFORE == 3
    env.setenv("COMPLAINT_RATE_DAYS", "2")  # a short period: the day before its last
    assert load_config().COMPLAINT_RATE_REMIND_DAYS_BEFORE == 1
    env.setenv("COMPLAINT_RATE_DAYS", "1")  # no day between the answer's and the last
    assert load_config().COMPLAINT_RATE_REMIND_DAYS_BEFORE == 0
    env.setenv("COMPLAINT_RATE_DAYS", "15")
    env.setenv("COMPLAINT_RATE_REMIND_DAYS_BEFORE", "14")
    assert load_config().COMPLAINT_RATE_REMIND_DAYS_BEFORE == 14
    env.setenv("COMPLAINT_RATE_REMIND_DAYS_BEFORE", "0")  # reminders off
    assert load_config().COMPLAINT_RATE_REMIND_DAYS_BEFORE == 0
