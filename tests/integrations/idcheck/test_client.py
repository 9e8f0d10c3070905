"""IdCheckClient end to end against the simulator (real HTTP on localhost, no mocks)."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import UTC, datetime

import pytest
from flask import Flask, Response, request

from core import clock as clock_mod
from integrations.idcheck import signing
from integrations.idcheck.client import IdCheckClient
from integrations.idcheck.simulator import create_simulator
from integrations.realname.base import (
    REASON_ID_INVALID,
    REASON_IDENTITY_MISMATCH,
    REASON_NO_RECORD,
    REASON_REJECTED,
    Person,
    ProviderFailed,
    ProviderUnavailable,
)
from integrations.realname.people import DEMO_PEOPLE
from integrations.simulator_server import ThreadedSimulator
from tests.integrations.idcheck.conftest import Tap

ZHANG = Person(*DEMO_PEOPLE[0])
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check_char(first17: str) -> str:
    """GB 11643: append the check character (computed here, independently of the simulator)."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def id_ending_in_x() -> str:
    for seq in range(100, 1000):
        candidate = with_check_char(f"32010219880808{seq}")
        if candidate.endswith("X"):
            return candidate
    raise AssertionError("no X check character found")


@pytest.mark.parametrize(("name", "id_number"), DEMO_PEOPLE)
def test_every_registered_person_matches(checker, control, name, id_number):
    result = checker.check(Person(name, id_number), out_ref="ref" + id_number[-6:])
    assert result.matched and result.reason is None and result.provider_code == "0"
    assert result.provider_request_id  # the service's 核验流水号, kept for the audit trail
    seen = control.requests()[-1]
    assert seen["request_id"] == "ref" + id_number[-6:] and seen["purpose"] == checker.purpose
    assert control.calls()["results"] == {"0": 1}


@pytest.mark.parametrize(
    ("person", "reason", "code"),
    [(Person("张四", ZHANG.id_number), REASON_IDENTITY_MISMATCH, "1"),
     (Person("赵六", with_check_char("11010119800101001")), REASON_NO_RECORD, "2"),
     (Person("张三", ZHANG.id_number[:17] + "4"), REASON_ID_INVALID, "3"),
     (Person("张三", with_check_char("11010120990307851")), REASON_ID_INVALID, "3"),
     (Person("张三", with_check_char("11010119900230851")), REASON_ID_INVALID, "3"),
     (Person("张三", "11010119900307851"), REASON_ID_INVALID, "3")],
)  # fmt: skip
def test_each_final_refusal_is_a_result_with_its_reason(checker, control, person, reason, code):
    result = checker.check(person, out_ref="r1")
    assert not result.matched and result.reason == reason and result.provider_code == code


def test_people_added_through_the_control_api_match_until_reset(checker, control):
    person = Person("欧阳·娜娜", id_ending_in_x())
    assert checker.check(person, out_ref="a1").reason == REASON_NO_RECORD
    control.add_person(person.name, person.id_number)
    assert checker.check(person, out_ref="a2").matched
    # The client sends the X upper-case and trims spaces, as the register stores it.
    assert checker.check(Person(" 欧阳·娜娜 ", person.id_number.lower() + " "), out_ref="a3").matched
    control.reset()
    assert checker.check(person, out_ref="a4").reason == REASON_NO_RECORD


def test_birth_dates_are_judged_by_the_simulated_clock_and_signatures_by_the_wall_clock(checker, control):
    born_2000 = Person(*DEMO_PEOPLE[2])
    previous = clock_mod.use(clock_mod.FrozenClock(datetime(1999, 6, 1, tzinfo=UTC)))
    try:
        # A frozen application clock does not break the transport: the signature still verifies.
        assert checker.check(born_2000, out_ref="c1").reason == REASON_ID_INVALID
        assert checker.check(ZHANG, out_ref="c2").matched
    finally:
        clock_mod.use(previous)
    assert checker.check(born_2000, out_ref="c3").matched


def test_name_and_id_number_never_travel_in_clear(sim_config):
    tap = Tap(create_simulator(sim_config))
    server = ThreadedSimulator(tap).start()
    try:
        client = IdCheckClient.from_config(sim_config | {"IDCHECK_BASE_URL": server.url})
        assert client.check(ZHANG, out_ref="wire1").matched
    finally:
        server.stop()
    headers, body = tap.requests[-1]
    wire = json.dumps(headers).encode() + body
    for secret in (ZHANG.name.encode(), json.dumps(ZHANG.name).encode(), ZHANG.id_number.encode(),
                   ZHANG.id_number[6:14].encode()):  # fmt: skip
        assert secret not in wire
    assert set(json.loads(body)) == {"request_id", "purpose", "payload"}
    assert headers["x-app-id"] == sim_config["IDCHECK_APP_ID"] and len(headers["x-signature"]) == 64


def test_a_badly_signed_response_is_refused(checker, control):
    control.faults(bad_response_signature=True)
    with pytest.raises(ProviderFailed) as err:
        checker.check(ZHANG, out_ref="s1")
    assert err.value.code == "bad_response_signature" and not err.value.retryable
    assert control.calls()["ok"] == 1  # the service answered; the client would not trust it


def test_an_unsigned_response_is_refused(sim_config):
    tap = Tap(create_simulator(sim_config))
    tap.strip_signature = True
    server = ThreadedSimulator(tap).start()
    try:
        client = IdCheckClient.from_config(sim_config | {"IDCHECK_BASE_URL": server.url})
        with pytest.raises(ProviderFailed) as err:
            client.check(ZHANG, out_ref="s2")
    finally:
        server.stop()
    assert err.value.code == "bad_response_signature"


def test_a_signed_body_that_is_not_the_documented_json_is_refused(checker, control):
    control.faults(malformed_response=True)
    with pytest.raises(ProviderFailed) as err:
        checker.check(ZHANG, out_ref="m1")
    assert err.value.code == "malformed_response"


def test_a_wrong_secret_is_refused_by_the_service(make_checker, control):
    with pytest.raises(ProviderFailed) as err:
        make_checker(IDCHECK_APP_SECRET="not-the-secret-0000000000000000").check(ZHANG, out_ref="w1")
    # The refusal is signed with the real secret, so this client cannot trust even that.
    assert err.value.code == "bad_response_signature" and "1001" in err.value.message
    assert control.calls()["errors"] == {"1001": 1}


def test_an_unknown_app_is_refused(make_checker, control):
    with pytest.raises(ProviderFailed) as err:
        make_checker(IDCHECK_APP_ID="someone-else").check(ZHANG, out_ref="u1")
    assert err.value.code == "1004"


def test_an_expired_timestamp_is_refused_and_accepted_again_in_the_window(checker, control):
    control.advance(301)
    with pytest.raises(ProviderFailed) as err:
        checker.check(ZHANG, out_ref="t1")
    assert err.value.code == "1002"
    control.advance(-60)  # well inside the window: a loaded machine takes seconds between calls
    assert checker.check(ZHANG, out_ref="t2").matched


@pytest.mark.parametrize(
    ("code", "kind"),
    [(1006, ProviderUnavailable), (5000, ProviderUnavailable), (5003, ProviderUnavailable),
     (1003, ProviderUnavailable), (1001, ProviderFailed), (1005, ProviderFailed), (4321, ProviderFailed)],
)  # fmt: skip
def test_envelope_errors_are_classified(checker, control, code, kind):
    control.faults(errors=[code])
    with pytest.raises(kind) as err:
        checker.check(ZHANG, out_ref="e1")
    assert err.value.code == str(code) and err.value.retryable is (kind is ProviderUnavailable)
    assert checker.check(ZHANG, out_ref="e2").matched  # only the next call was affected


def test_provider_down_is_unavailable(checker, control):
    control.faults(down=True)
    with pytest.raises(ProviderUnavailable) as err:
        checker.check(ZHANG, out_ref="d1")
    assert err.value.code == "http_503"
    assert control.calls()["http_5xx"] == 1


def test_a_slow_provider_times_out(checker, control):
    control.faults(latency_ms=1500)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as err:
        checker.check(ZHANG, out_ref="l1")
    assert err.value.code == "timeout" and time.monotonic() - started < 1.2
    # The simulator still answers the abandoned call after its latency: wait for it here, so it
    # does not land in (and get counted by) whichever test runs next.
    deadline = time.monotonic() + 5
    while control.calls()["ok"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert control.calls()["ok"] == 1


def test_a_refused_connection_is_unavailable(make_checker):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderUnavailable) as err:
        make_checker(IDCHECK_BASE_URL=f"http://127.0.0.1:{port}/").check(ZHANG, out_ref="x1")
    assert err.value.code == "connection_failed"


def test_a_wrong_base_path_is_a_failure(make_checker, idcheck_server, control):
    with pytest.raises(ProviderFailed) as err:
        make_checker(IDCHECK_BASE_URL=idcheck_server.url + "elsewhere/").check(ZHANG, out_ref="p1")
    assert err.value.code == "http_404"


def test_missing_configuration_fails_without_a_call(make_checker, control):
    with pytest.raises(ProviderFailed) as err:
        make_checker(IDCHECK_APP_SECRET="").check(ZHANG, out_ref="k1")
    assert err.value.code == "config_error" and control.calls()["total"] == 0
    with pytest.raises(ProviderFailed):
        make_checker().check(ZHANG, out_ref="not a valid ref!")
    assert control.calls()["total"] == 0


@pytest.fixture
def rogue(sim_config):
    """A server holding the real secret that signs whatever envelope the test sets."""
    app = Flask("rogue")
    answer: dict = {}

    @app.post(signing.VERIFY_PATH)
    def verify() -> Response:
        request_id = json.loads(request.get_data())["request_id"]
        body = json.dumps({"request_id": request_id, **answer}).encode()
        resp = Response(body, 200, mimetype="application/json")
        resp.headers.update(
            signing.response_headers(sim_config["IDCHECK_APP_SECRET"], 200, body, timestamp=int(time.time()))
        )
        return resp

    server = ThreadedSimulator(app).start()
    client = IdCheckClient.from_config(sim_config | {"IDCHECK_BASE_URL": server.url, "PROVIDER_TIMEOUT": 2})
    yield client, answer
    server.stop()


def test_an_answer_for_another_request_is_refused(rogue):
    client, answer = rogue
    answer.update(code=0, message="成功", result={"code": "0", "message": "一致"}, request_id="someone-else")
    with pytest.raises(ProviderFailed) as err:
        client.check(ZHANG, out_ref="q1")
    assert err.value.code == "request_id_mismatch"


def test_an_unknown_result_code_is_a_rejection_never_a_match(rogue):
    client, answer = rogue
    answer.update(code=0, message="成功", serial_no="S1", result={"code": "9", "message": "证件已注销"})
    result = client.check(ZHANG, out_ref="q2")
    assert not result.matched and result.reason == REASON_REJECTED and result.provider_code == "9"
    answer.update(result={"message": "一致"})
    with pytest.raises(ProviderFailed) as err:
        client.check(ZHANG, out_ref="q3")
    assert err.value.code == "malformed_response"


def test_no_name_or_id_number_in_logs_or_errors(checker, control, caplog):
    people = [ZHANG, Person("张四", ZHANG.id_number), Person("赵六", with_check_char("11010119800101001"))]
    caplog.set_level(logging.DEBUG)
    errors = []
    for person in people:
        checker.check(person, out_ref="log1")
    for faults in ({"errors": [5003]}, {"bad_response_signature": True}, {"down": True}):
        control.faults(**faults)
        with pytest.raises((ProviderFailed, ProviderUnavailable)) as err:
            checker.check(ZHANG, out_ref="log2")
        errors.append(err.value)
        control.reset()
    text = " ".join(str(vars(r)) for r in caplog.records) + " ".join(f"{e} {e.message}" for e in errors)
    assert "idcheck" in text
    for person in people:
        assert person.name not in text and person.id_number not in text
    assert control.requests() == [] or all("name" not in r for r in control.requests())
    assert checker._secret not in repr(checker) and "<hidden>" in repr(ZHANG)
