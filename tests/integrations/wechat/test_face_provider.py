"""WechatFaceProvider end to end against the simulator: outcomes, expiry, refusals and outages."""

import logging
import socket
import time
import uuid

import pytest
import redis

from config import load_config
from core.redis import resolve_url
from integrations.realname.base import (
    REASON_CANCELLED,
    REASON_EXPIRED,
    REASON_ID_INVALID,
    REASON_IDENTITY_MISMATCH,
    REASON_LIVENESS_FAILED,
    REASON_REJECTED,
    Person,
    ProviderFailed,
    ProviderUnavailable,
    StartContext,
)
from integrations.realname.people import DEMO_PEOPLE
from integrations.wechat.client import WechatClient
from integrations.wechat.face import WechatFaceProvider, cert_hash, reason_for

CFG = load_config("test")
GET_VERIFY_ID = "cityservice/face/identify/getverifyid"
QUERY = "cityservice/face/identify/queryverifyinfo"
ZHANG = Person(*DEMO_PEOPLE[0])
MAIMAITI = Person(*DEMO_PEOPLE[3])  # the name has a middle dot


@pytest.fixture
def redis_conn(base_config):
    return redis.Redis.from_url(resolve_url(base_config["REDIS_URL"], base_config["INSTANCE_DIR"]))


@pytest.fixture
def make_provider(wechat_sim, redis_conn):
    """A provider on its own WechatClient; a fresh key prefix gives each test its own token."""

    def make(timeout=5.0, base_url=None):
        client = WechatClient(appid=CFG.WECHAT_APPID, secret=CFG.WECHAT_SECRET,
                              base_url=base_url or wechat_sim.url, timeout=timeout, redis=redis_conn,
                              prefix=f"test:face:{uuid.uuid4().hex}")  # fmt: skip
        return WechatFaceProvider(client)

    return make


@pytest.fixture
def provider(make_provider):
    return make_provider()


@pytest.fixture
def ctx(wx):
    return StartContext(out_ref=uuid.uuid4().hex, openid=wx.add_user()["openid"])


def test_cert_hash_matches_the_documented_example():
    assert cert_hash("张三", "310101199801011234") == (
        "3c241f7ff324977aeb91f173bb2a7b06569e6fd784d5573db34a636d8671108b"
    )


def test_happy_path_pending_then_passed(provider, ctx, wx):
    started = provider.start(ZHANG, ctx)
    assert started.client_payload == {"verify_id": started.provider_ref}
    assert started.expires_in == 3600
    pending = provider.result(ZHANG, ctx, started.provider_ref)
    assert pending.pending and not pending.passed and pending.reason is None
    wx.face_perform(started.provider_ref, "pass")
    result = provider.result(ZHANG, ctx, started.provider_ref)
    assert (result.passed, result.pending, result.reason) == (True, False, None)
    assert result.provider_code == "10000"
    counts = wx.calls()
    assert counts[GET_VERIFY_ID] == 1 and counts[QUERY] == 2
    assert counts["cgi-bin/stable_token"] == 1  # one shared access token for every call


def test_name_with_middle_dot_passes(provider, ctx, wx):
    started = provider.start(MAIMAITI, ctx)
    wx.face_perform(started.provider_ref, "pass")
    assert provider.result(MAIMAITI, ctx, started.provider_ref).passed


@pytest.mark.parametrize(
    ("person", "outcome", "reason", "code"),
    [
        (ZHANG, "other_person", REASON_IDENTITY_MISMATCH, "10003"),
        (Person("张四", ZHANG.id_number), "pass", REASON_IDENTITY_MISMATCH, "10003"),  # name mismatch
        (Person("赵六", "110101199003078523"), "pass", REASON_IDENTITY_MISMATCH, "10003"),  # no such person
        (ZHANG, "liveness_fail", REASON_LIVENESS_FAILED, "10002"),
        (ZHANG, "cancel", REASON_CANCELLED, "90004"),
        (Person("赵六", "110101199003078510"), "pass", REASON_ID_INVALID, "10001"),  # bad check character
    ],
)
def test_each_failure_reason(provider, ctx, wx, person, outcome, reason, code):
    started = provider.start(person, ctx)
    wx.face_perform(started.provider_ref, outcome)
    result = provider.result(person, ctx, started.provider_ref)
    assert (result.passed, result.pending) == (False, False)
    assert (result.reason, result.provider_code) == (reason, code)


def test_a_person_added_to_the_register_passes(provider, ctx, wx):
    person = Person("赵六", "110101199003078523")
    wx.add_person(person.name, person.id_number)
    started = provider.start(person, ctx)
    wx.face_perform(started.provider_ref, "pass")
    assert provider.result(person, ctx, started.provider_ref).passed


def test_expired_verify_id_is_a_final_expired_result(provider, ctx, wx, clock):
    started = provider.start(ZHANG, ctx)
    wx.advance(3601)
    result = provider.result(ZHANG, ctx, started.provider_ref)
    assert (result.passed, result.pending, result.reason, result.provider_code) == (
        False, False, REASON_EXPIRED, "84001",
    )  # fmt: skip
    other = StartContext(out_ref=uuid.uuid4().hex, openid=ctx.openid)
    started = provider.start(ZHANG, other)
    clock.advance(3600)  # the frozen core clock expires it as well
    assert provider.result(ZHANG, other, started.provider_ref).reason == REASON_EXPIRED


def test_auto_outcome_for_demos_and_the_benchmark(provider, ctx, wx):
    wx.face_auto("pass")
    started = provider.start(ZHANG, ctx)
    assert provider.result(ZHANG, ctx, started.provider_ref).passed


def test_a_different_person_at_result_time_is_refused_by_the_cert_hash(provider, ctx, wx):
    started = provider.start(ZHANG, ctx)
    wx.face_perform(started.provider_ref, "pass")
    with pytest.raises(ProviderFailed) as err:
        provider.result(Person(*DEMO_PEOPLE[1]), ctx, started.provider_ref)
    assert err.value.code == "40097" and not err.value.retryable


def test_another_user_or_reference_at_result_time_is_refused(provider, ctx, wx):
    started = provider.start(ZHANG, ctx)
    someone_else = StartContext(out_ref=ctx.out_ref, openid=wx.add_user()["openid"])
    with pytest.raises(ProviderFailed) as err:
        provider.result(ZHANG, someone_else, started.provider_ref)
    assert err.value.code == "40097"
    with pytest.raises(ProviderFailed) as err:
        provider.result(ZHANG, StartContext(out_ref="other_ref_01", openid=ctx.openid), started.provider_ref)
    assert err.value.code == "40097"


def test_openid_that_is_not_a_user_is_refused(provider):
    with pytest.raises(ProviderFailed) as err:
        provider.start(ZHANG, StartContext(out_ref="ref_00001", openid="oNOTaUSERofTHISapp000000000"))
    assert err.value.code == "40003"


def test_openid_and_a_valid_out_ref_are_required_before_any_call(provider, wx):
    with pytest.raises(ProviderFailed) as err:
        provider.start(ZHANG, StartContext(out_ref="ref_00001"))
    assert err.value.code == "openid_required"
    with pytest.raises(ProviderFailed) as err:
        provider.result(ZHANG, StartContext(out_ref="ref_00001"), "some-verify-id")
    assert err.value.code == "openid_required"
    for bad in ("abc", "ref/00001", "r" * 33):
        with pytest.raises(ProviderFailed) as err:
            provider.start(ZHANG, StartContext(out_ref=bad, openid="oWHOEVER"))
        assert err.value.code == "invalid_out_ref"
    assert wx.calls() == {}


def test_provider_down_is_unavailable(provider, ctx, wx):
    started = provider.start(ZHANG, ctx)
    wx.faults(down=True)
    with pytest.raises(ProviderUnavailable) as err:
        provider.result(ZHANG, ctx, started.provider_ref)
    assert err.value.code == "http_503" and err.value.retryable
    with pytest.raises(ProviderUnavailable):
        provider.start(ZHANG, StartContext(out_ref=uuid.uuid4().hex, openid=ctx.openid))
    wx.faults(down=False)
    assert provider.result(ZHANG, ctx, started.provider_ref).pending


def test_slow_provider_times_out_as_unavailable(make_provider, ctx, wx):
    provider = make_provider(timeout=0.2)
    provider.start(ZHANG, ctx)  # the token is fetched while WeChat is fast
    wx.faults(latency_ms=1500)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as err:
        provider.start(ZHANG, StartContext(out_ref=uuid.uuid4().hex, openid=ctx.openid))
    assert err.value.code == "timeout"
    # Well before WeChat's answer, with room for a machine busy with the other test process.
    assert time.monotonic() - started < 1.0
    # Let the abandoned call finish here rather than inside the next test.
    time.sleep(max(0.0, 1.6 - (time.monotonic() - started)))


def test_unreachable_provider_is_unavailable(make_provider, ctx):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(ProviderUnavailable) as err:
        make_provider(base_url=closed).start(ZHANG, ctx)
    assert err.value.code == "connection_failed"


def test_busy_and_rate_limit_errcodes_are_unavailable_then_recover(provider, ctx, wx):
    wx.faults(errors=[-1, 45009])
    for code in ("-1", "45009"):
        with pytest.raises(ProviderUnavailable) as err:
            provider.start(ZHANG, ctx)
        assert err.value.code == code
    assert provider.start(ZHANG, ctx).provider_ref


def test_expired_access_token_is_refreshed_transparently(provider, ctx, wx):
    started = provider.start(ZHANG, ctx)
    wx.expire_access_token()
    wx.face_perform(started.provider_ref, "pass")
    assert provider.result(ZHANG, ctx, started.provider_ref).passed
    assert wx.calls()["cgi-bin/stable_token"] == 2


def test_malformed_answer_is_a_provider_failure(provider, ctx, wx):
    wx.fault(QUERY, http_status=200)  # 200 with a body that is not JSON
    started = provider.start(ZHANG, ctx)
    with pytest.raises(ProviderFailed) as err:
        provider.result(ZHANG, ctx, started.provider_ref)
    assert err.value.code == "malformed_response"


def test_no_name_or_id_number_in_logs_or_errors(provider, ctx, wx, caplog):
    caplog.set_level(logging.DEBUG)
    started = provider.start(ZHANG, ctx)
    wx.face_perform(started.provider_ref, "other_person")
    provider.result(ZHANG, ctx, started.provider_ref)
    errors = []
    for kwargs in ({"errors": [-1]}, {"down": True}):
        wx.faults(**kwargs)
        with pytest.raises(ProviderUnavailable) as err:
            provider.result(ZHANG, ctx, started.provider_ref)
        errors.append(str(err.value))
    wx.faults(down=False)
    with pytest.raises(ProviderFailed) as err:
        provider.result(Person(*DEMO_PEOPLE[1]), ctx, started.provider_ref)
    errors.append(str(err.value))
    text = caplog.text + "\n".join(errors)
    for secret in (ZHANG.name, ZHANG.id_number, DEMO_PEOPLE[1][0], DEMO_PEOPLE[1][1]):
        assert secret not in text


@pytest.mark.parametrize(
    ("verify_ret", "reason"),
    [
        (10001, REASON_ID_INVALID),
        (10002, REASON_LIVENESS_FAILED),
        (10003, REASON_IDENTITY_MISMATCH),
        (10004, REASON_IDENTITY_MISMATCH),
        (90002, REASON_CANCELLED),
        (90024, REASON_CANCELLED),
        (90011, REASON_LIVENESS_FAILED),
        (90008, REASON_REJECTED),  # camera permission not granted
        (90199, REASON_REJECTED),
        (12345, REASON_REJECTED),
    ],
)
def test_reason_mapping(verify_ret, reason):
    assert reason_for(verify_ret) == reason
