"""Someone who knows a citizen's number cannot lock the citizen out of SMS login: a stranger's
wrong guesses, sends and replacement codes count against the stranger, not against the code the
citizen asked for nor the citizen's own sends (docs/identity.md, "SMS login and strangers")."""

from __future__ import annotations

import httpx
import pytest

from tests.api.v1.test_sms_login import (
    _phone,
    advance,
    code_on_phone,
    deliver,
    error_code,
    login,
    send,
    wrong,
)

OWNER_IP = "10.40.0.1"  # the citizen's phone
STRANGER_IP = "10.41.0.1"


@pytest.fixture
def sim(sms_sim):
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


def test_a_strangers_wrong_guesses_do_not_burn_the_code_the_citizen_asked_for(client, sim):
    phone = _phone(801)
    assert send(client, phone, ip=OWNER_IP).status_code == 202
    deliver()
    code = code_on_phone(sim, phone)
    answers = [error_code(login(client, phone, wrong(code), ip=STRANGER_IP)) for _ in range(7)]
    assert answers[:4] == ["auth.otp_invalid"] * 4
    assert set(answers[4:]) == {"auth.otp_attempts_exceeded"}  # the stranger is stopped...
    # ...even with the right code (a stranger's guesses are bounded too)...
    assert error_code(login(client, phone, code, ip=STRANGER_IP)) == "auth.otp_attempts_exceeded"
    # ...while the citizen still logs in with the code on their phone.
    r = login(client, phone, code, ip=OWNER_IP)
    assert r.status_code == 200, r.get_json()


def test_the_citizens_own_wrong_guesses_still_burn_their_code(client, sim):
    phone = _phone(802)
    send(client, phone, ip=OWNER_IP)
    deliver()
    code = code_on_phone(sim, phone)
    for _ in range(5):
        login(client, phone, wrong(code), ip=OWNER_IP)
    assert error_code(login(client, phone, code, ip=OWNER_IP)) == "auth.otp_attempts_exceeded"


def test_a_code_a_stranger_asks_for_does_not_replace_the_citizens(client, sim, clock):
    phone = _phone(803)
    assert send(client, phone, ip=OWNER_IP).status_code == 202
    deliver()
    code = code_on_phone(sim, phone)
    advance(clock, sim, 31)  # past the provider's 30-second limit per number
    assert send(client, phone, ip=STRANGER_IP).status_code == 202
    deliver()
    r = login(client, phone, code, ip=OWNER_IP)
    assert r.status_code == 200, r.get_json()


def test_a_strangers_sends_leave_the_citizen_sends_of_their_own(client, clock, sim):
    phone = _phone(804)
    assert send(client, phone, ip=STRANGER_IP).status_code == 202
    assert send(client, phone, ip=OWNER_IP).status_code == 202  # no wait behind the stranger's send
    for _ in range(5):
        clock.advance(61)
        send(client, phone, ip=STRANGER_IP)
    refused = send(client, phone, ip=STRANGER_IP)
    assert refused.status_code == 429
    clock.advance(61)
    r = send(client, phone, ip=OWNER_IP)
    assert r.status_code == 202, r.get_json()


def test_a_citizen_whose_address_changed_logs_in_with_the_challenge_id(client, sim):
    """Wi-Fi at home when the code was asked for, mobile data when it is typed: the app sends the
    `challenge_id` it was given, and strangers' guesses have not used up the code for it."""
    phone = _phone(805)
    sent = send(client, phone, ip=OWNER_IP)
    challenge_id = sent.get_json()["challenge_id"]
    deliver()
    code = code_on_phone(sim, phone)
    for _ in range(5):
        login(client, phone, wrong(code), ip=STRANGER_IP)
    body = {"phone": phone, "code": code, "challenge_id": challenge_id}
    r = client.post("/v1/auth/sms/login", json=body, environ_base={"REMOTE_ADDR": "10.40.9.9"})
    assert r.status_code == 200, r.get_json()


def test_a_challenge_id_of_another_number_makes_no_one_the_asker(client, sim):
    """A stranger naming the challenge of a code they asked for their own number is still a
    stranger to the citizen's code: their guesses neither burn it nor outlast their own bound."""
    mine, theirs = _phone(806), _phone(807)
    send(client, mine, ip=OWNER_IP)
    other = send(client, theirs, ip=STRANGER_IP).get_json()["challenge_id"]
    deliver()
    code = code_on_phone(sim, mine)
    body = {"phone": mine, "challenge_id": other}
    guesses = [
        client.post(
            "/v1/auth/sms/login", json=body | {"code": wrong(code)}, environ_base={"REMOTE_ADDR": STRANGER_IP}
        )
        for _ in range(5)
    ]
    assert error_code(guesses[-1]) == "auth.otp_attempts_exceeded"
    stopped = client.post(
        "/v1/auth/sms/login", json=body | {"code": code}, environ_base={"REMOTE_ADDR": STRANGER_IP}
    )
    assert error_code(stopped) == "auth.otp_attempts_exceeded"
    for bad in ("", "x" * 100):
        r = client.post("/v1/auth/sms/login", json=body | {"code": code, "challenge_id": bad})
        assert r.status_code == 422 and "challenge_id" in r.get_json()["error"]["fields"]
    r = login(client, mine, code, ip=OWNER_IP)
    assert r.status_code == 200, r.get_json()


def test_the_numbers_sends_from_every_address_together_stop_at_the_providers_hourly_limit(
    client, clock, sim, app
):
    """The provider refuses more than five messages an hour to one number (Tencent's default); a
    code it would refuse is answered 429 with the wait at once, not accepted and never sent."""
    phone = _phone(808)
    total = app.config["SMS_PER_PHONE_TOTAL_PER_HOUR"]
    for n in range(total):
        assert send(client, phone, ip=f"10.42.0.{n}").status_code == 202
        clock.advance(31)
    r = send(client, phone, ip=OWNER_IP)
    assert r.status_code == 429 and error_code(r) == "rate_limited"
    assert 3600 - 31 * total <= int(r.headers["Retry-After"]) <= 3600
    clock.advance(int(r.headers["Retry-After"]))
    assert send(client, phone, ip=OWNER_IP).status_code == 202  # after the cooldown


def test_a_long_wait_is_told_in_minutes_not_thousands_of_seconds(client, clock, app):
    """ "请 3417 秒后再试" means nothing to an elderly citizen: a wait of minutes is said in
    minutes (Retry-After and details keep the seconds for the app)."""
    phone = _phone(809)
    for _ in range(app.config["SMS_PER_PHONE_PER_HOUR"]):
        send(client, phone, ip=OWNER_IP)
        clock.advance(61)
    r = send(client, phone, ip=OWNER_IP)
    wait = int(r.headers["Retry-After"])
    minutes = -(-wait // 60)
    assert r.get_json()["error"]["message"] == f"操作过于频繁，请 {minutes} 分钟后再试"
    assert r.get_json()["error"]["details"]["retry_after"] == wait
    en = send(client, phone, ip=OWNER_IP, **{"Accept-Language": "en"})
    assert en.get_json()["error"]["message"] == f"Too many requests; try again in {minutes} minutes"
    clock.advance(wait - 30)
    soon = send(client, phone, ip=OWNER_IP)
    assert soon.get_json()["error"]["message"] == f"操作过于频繁，请 {soon.headers['Retry-After']} 秒后再试"


def test_the_last_attempt_left_is_told_in_plain_english(client, sim):
    phone = _phone(810)
    send(client, phone, ip=OWNER_IP)
    deliver()
    code = code_on_phone(sim, phone)
    en = {"Accept-Language": "en"}
    messages = [
        login(client, phone, wrong(code), ip=OWNER_IP, **en).get_json()["error"]["message"] for _ in range(4)
    ]
    assert messages[-2:] == [
        "Wrong verification code; 2 attempts left",
        "Wrong verification code; 1 attempt left",
    ]


def test_a_stranger_reusing_the_citizens_idempotency_key_is_not_handed_their_challenge(client, sim):
    """The send's body (a phone number) is no secret: a stranger sending it with the key the
    citizen's app used must not be replayed the citizen's `challenge_id`, which would name the
    citizen's code as theirs and let their wrong guesses burn it."""
    phone = _phone(811)
    key = {"Idempotency-Key": "sms-send-0000001"}
    mine = send(client, phone, ip=OWNER_IP, **key)
    again = send(client, phone, ip=OWNER_IP, **key)  # the app's own retry is still replayed
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["challenge_id"] == mine.get_json()["challenge_id"]
    theirs = send(client, phone, ip=STRANGER_IP, **key)
    assert theirs.headers.get("Idempotent-Replayed") != "true"
    assert theirs.get_json()["challenge_id"] != mine.get_json()["challenge_id"]
