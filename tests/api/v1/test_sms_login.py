"""SMS login over HTTP against the SMS simulator: send, deliver through the outbox, log in.

The code is read from the simulator's delivered messages, as the citizen reads it on the phone.
"""

from __future__ import annotations

import json

import httpx
import pytest
from rq import SimpleWorker
from sqlalchemy import select, text

from core.db import db
from core.outbox.models import DEAD, RETRYING, SUCCEEDED, OutboxJob
from core.outbox.service import outbox
from core.redis import get_redis
from domain.auth.models import SmsChallenge
from workers.jobs import execute_outbox_job

IP = "10.20.0.1"


@pytest.fixture
def sim(sms_sim):
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


def _phone(n: int = 0) -> str:
    return f"1391234{n:04d}"


def send(client, phone, ip=IP, **headers):
    return client.post(
        "/v1/auth/sms/send", json={"phone": phone}, headers=headers, environ_base={"REMOTE_ADDR": ip}
    )


def login(client, phone, code, ip=IP, device_label=None, challenge_id=None, **headers):
    body = {"phone": phone, "code": code} | ({"device_label": device_label} if device_label else {})
    body |= {"challenge_id": challenge_id} if challenge_id else {}
    return client.post("/v1/auth/sms/login", json=body, headers=headers, environ_base={"REMOTE_ADDR": ip})


def sms_jobs() -> list[OutboxJob]:
    # Always the registry's current session: running a job removes the one a test held.
    session = db.session()
    session.expire_all()
    return list(
        session.scalars(select(OutboxJob).where(OutboxJob.name == "sms.send").order_by(OutboxJob.created_at))
    )


def deliver() -> list[str]:
    """Run every due SMS job once, as a worker would. The due ones are read before any runs: a
    run removes the session the rest were loaded in (two jobs made in one frozen instant may
    come in either order)."""
    due = [job.id for job in sms_jobs() if job.status in ("pending", "enqueued", RETRYING)]
    return [execute_outbox_job(job_id) for job_id in due]


def messages(sim, phone) -> list[dict]:
    return httpx.get(sim.url + "_sim/messages", params={"phone": phone}).json()["messages"]


def code_on_phone(sim, phone) -> str:
    latest = messages(sim, phone)[-1]
    code = latest["params"][0]
    assert code in latest["content"] and len(code) == 6 and code.isdigit()
    return code


def advance(clock, sim, seconds):
    """Time passes for us and for the SMS provider's per-number windows alike."""
    clock.advance(seconds)
    httpx.post(sim.url + "_sim/advance", json={"seconds": seconds}).raise_for_status()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def error_code(resp) -> str:
    return resp.get_json()["error"]["code"]


def test_sms_login_end_to_end(client, sim, clock):
    phone = _phone(1)
    sent = send(client, phone)
    assert sent.status_code == 202, sent.get_json()
    answer = sent.get_json()
    assert answer.pop("challenge_id") and answer == {"expires_in": 300, "resend_after": 60}

    # The job was handed to Redis on commit; a worker drains the queue.
    SimpleWorker([outbox.queue()], connection=get_redis()).work(burst=True, with_scheduler=False)
    [job] = sms_jobs()
    assert job.status == SUCCEEDED and job.result["serial_no"]
    [msg] = messages(sim, phone)
    assert msg["session_context"] == job.id  # a duplicate delivery would be traceable to the job

    r = login(client, phone, code_on_phone(sim, phone), device_label="华为 Mate 60")
    assert r.status_code == 200, r.get_json()
    first = r.get_json()
    assert first["new_account"] is True and first["token_type"] == "Bearer"
    auth = {"Authorization": f"Bearer {first['access_token']}"}
    me = client.get("/v1/me", headers=auth).get_json()
    assert me["id"] == first["account_id"] and me["channel"] == "app"
    assert me["phone"] == phone[:3] + "****" + phone[-4:]
    devices = client.get("/v1/me/sessions", headers=auth).get_json()
    assert [d["device_label"] for d in devices] == ["华为 Mate 60"]

    advance(clock, sim, 61)
    assert send(client, "+86 " + phone).status_code == 202  # same number, other spelling
    deliver()
    again = login(client, phone, code_on_phone(sim, phone)).get_json()
    assert again["new_account"] is False and again["account_id"] == first["account_id"]
    assert again["session_id"] != first["session_id"]


def test_wrong_code_counts_down_and_the_fifth_burns_the_code(client, sim):
    phone = _phone(2)
    send(client, phone)
    deliver()
    code = code_on_phone(sim, phone)
    for remaining in (4, 3, 2, 1):
        r = login(client, phone, wrong(code))
        assert r.status_code == 400 and error_code(r) == "auth.otp_invalid"
        assert r.get_json()["error"]["details"]["remaining_attempts"] == remaining
        assert str(remaining) in r.get_json()["error"]["message"]
    fifth = login(client, phone, wrong(code))
    assert fifth.status_code == 400 and error_code(fifth) == "auth.otp_attempts_exceeded"
    burned = login(client, phone, code)  # the right code no longer opens anything
    assert burned.status_code == 400 and error_code(burned) == "auth.otp_attempts_exceeded"


def _guess_at_once(
    app, phone: str, codes: list[str], ip_prefix: str, challenge_id: str
) -> list[tuple[str, int | None]]:
    """Send one login per code from as many threads at once (each its own client and IP, each
    naming the code's challenge); (error code, remaining_attempts) of each answer."""
    import threading

    barrier = threading.Barrier(len(codes))
    answers: list[tuple[str, int | None]] = []
    lock = threading.Lock()

    def guess(n: int, code: str) -> None:
        mine = app.test_client()
        barrier.wait()
        body = login(mine, phone, code, ip=f"{ip_prefix}.{n}", challenge_id=challenge_id).get_json()["error"]
        with lock:
            answers.append((body["code"], (body.get("details") or {}).get("remaining_attempts")))

    threads = [threading.Thread(target=guess, args=(n, code)) for n, code in enumerate(codes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def test_concurrent_wrong_guesses_each_take_one_attempt_and_see_their_own_remainder(app, client, sim):
    """Wrong codes sent at once (several phones, a script): each wrong guess consumes exactly one
    of the five attempts and is told its own remainder (4, 3, 2, 1: never one twice); the guesses
    beyond are refused as exceeded, and the right code no longer opens anything."""
    guessers = 8
    for round_ in range(4):
        phone = _phone(40 + round_)
        sent = send(client, phone, ip=f"10.30.{round_}.1")
        assert sent.status_code == 202
        deliver()
        code = code_on_phone(sim, phone)
        challenge_id = sent.get_json()["challenge_id"]
        answers = _guess_at_once(app, phone, [wrong(code)] * guessers, f"10.31.{round_}", challenge_id)
        invalid = sorted(left for c, left in answers if c == "auth.otp_invalid")
        exceeded = [c for c, _ in answers if c == "auth.otp_attempts_exceeded"]
        assert invalid == [1, 2, 3, 4] and len(exceeded) == guessers - 4, answers
        session = db.session()
        session.expire_all()
        challenge = session.scalars(select(SmsChallenge).order_by(SmsChallenge.created_at.desc())).first()
        assert challenge.attempts == 5
        db.session.remove()
        burned = login(client, phone, code, ip="10.32.0.1", challenge_id=challenge_id)
        assert error_code(burned) == "auth.otp_attempts_exceeded"


def test_code_expires_after_five_minutes(client, sim, clock):
    early, late = _phone(3), _phone(4)
    send(client, early)
    send(client, late)
    deliver()
    clock.advance(299)
    assert login(client, early, code_on_phone(sim, early)).status_code == 200
    clock.advance(1)
    r = login(client, late, code_on_phone(sim, late))
    assert r.status_code == 400 and error_code(r) == "auth.otp_expired"


def test_code_is_single_use(client, sim):
    phone = _phone(5)
    send(client, phone)
    deliver()
    code = code_on_phone(sim, phone)
    assert login(client, phone, code).status_code == 200
    reuse = login(client, phone, code)
    assert reuse.status_code == 400 and error_code(reuse) == "auth.otp_expired"


def test_login_without_any_code_sent(client):
    r = login(client, _phone(6), "123456")
    assert r.status_code == 400 and error_code(r) == "auth.otp_expired"


@pytest.mark.parametrize("phone", ["12345", "23800138000", "1380013800a", "+1 415 555 0100"])
def test_invalid_phone_is_422_with_a_stable_code(client, phone):
    r = send(client, phone)
    assert r.status_code == 422 and error_code(r) == "account.phone_invalid"
    r = login(client, phone, "123456")
    assert r.status_code == 422 and error_code(r) == "account.phone_invalid"


def test_malformed_code_and_unknown_fields_are_rejected(client):
    r = login(client, _phone(7), "12ab56")
    assert r.status_code == 422 and "code" in r.get_json()["error"]["fields"]
    r = client.post("/v1/auth/sms/send", json={"phone": _phone(7), "extra": 1})
    assert r.status_code == 422 and "extra" in r.get_json()["error"]["fields"]


def test_new_code_replaces_the_previous_one(client, sim, clock):
    phone = _phone(8)
    send(client, phone)
    deliver()
    old = code_on_phone(sim, phone)
    advance(clock, sim, 61)
    send(client, phone)
    deliver()
    new = code_on_phone(sim, phone)
    if old != new:  # one chance in a million that both codes are equal
        r = login(client, phone, old)
        assert r.status_code == 400 and error_code(r) == "auth.otp_invalid"
    assert login(client, phone, new).status_code == 200


def test_a_replaced_code_still_waiting_for_delivery_is_not_sent(client, sim, clock):
    phone = _phone(9)
    send(client, phone)
    advance(clock, sim, 61)
    send(client, phone)
    first, second = sms_jobs()
    assert execute_outbox_job(first.id) == SUCCEEDED
    assert sms_jobs()[0].result == {"skipped": "challenge_not_live"}
    assert messages(sim, phone) == []
    assert execute_outbox_job(second.id) == SUCCEEDED
    assert [m["session_context"] for m in messages(sim, phone)] == [second.id]


def test_second_send_within_a_minute_is_429_with_retry_after(client, clock, sim):
    phone = _phone(10)
    assert send(client, phone).status_code == 202
    clock.advance(20)
    r = send(client, phone)
    assert r.status_code == 429 and error_code(r) == "rate_limited"
    assert 39 <= int(r.headers["Retry-After"]) <= 40
    assert r.get_json()["error"]["details"]["retry_after"] == int(r.headers["Retry-After"])
    clock.advance(40)
    assert send(client, phone).status_code == 202


def test_one_address_sends_a_number_only_a_few_codes_an_hour(client, clock, app):
    phone = _phone(11)
    limit = app.config["SMS_PER_PHONE_PER_HOUR"]
    for _ in range(limit):
        assert send(client, phone).status_code == 202
        clock.advance(61)
    r = send(client, phone)  # 61 s after the last
    assert r.status_code == 429
    assert 3600 - 61 * limit - 5 <= int(r.headers["Retry-After"]) <= 3600 - 61 * limit
    clock.advance(int(r.headers["Retry-After"]))
    assert send(client, phone).status_code == 202


def test_per_ip_send_limit_spans_phone_numbers(client, app):
    limit = app.config["SMS_PER_IP_PER_HOUR"]
    for n in range(limit):
        assert send(client, _phone(100 + n)).status_code == 202
    r = send(client, _phone(200))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 3000
    assert send(client, _phone(200), ip="10.20.0.2").status_code == 202


def test_a_refused_send_counts_against_no_limit(client, app):
    """A hall's Wi-Fi: one citizen tapping "resend" too early, again and again, is refused each
    time by their number's interval, and does not use up the address's sends for the others."""
    limit = app.config["SMS_PER_IP_PER_HOUR"]
    impatient = _phone(500)
    assert send(client, impatient).status_code == 202
    for _ in range(limit):
        assert send(client, impatient).status_code == 429  # within the number's interval
    for n in range(limit - 1):  # the address's allowance, less the one send that went out
        assert send(client, _phone(600 + n)).status_code == 202, n
    assert send(client, _phone(700)).status_code == 429  # now the address's limit


def test_login_attempts_per_ip_per_minute(client, app, clock):
    limit = app.config["LOGIN_PER_IP_PER_MINUTE"]
    for n in range(limit):
        assert login(client, _phone(300 + n), "123456").status_code == 400
    r = login(client, _phone(400), "123456")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert login(client, _phone(400), "123456", ip="10.20.0.3").status_code == 400
    clock.advance(61)
    assert login(client, _phone(400), "123456").status_code == 400


def test_stored_job_and_challenge_hold_neither_phone_nor_code(client, sim, services):
    phone = _phone(12)
    send(client, phone)
    session = db.session()

    def stored_payload():
        session.expire_all()
        raw = session.execute(text("SELECT payload FROM outbox_jobs")).scalar_one()
        return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)  # SQLite text / PG json

    queued = stored_payload()
    deliver()
    code = code_on_phone(sim, phone)
    challenge = session.scalars(select(SmsChallenge)).one()
    for stored in (queued, challenge.code_hash, challenge.phone_lookup):
        assert phone not in stored and phone[-8:] not in stored and code not in stored
    payload = json.loads(queued)
    assert set(payload) == {"template", "challenge_id", "data", "_scrub"}
    # While queued the job carries both, encrypted for its own purpose only...
    opened = json.loads(services.encryptor.decrypt(payload["data"], purpose="sms-job"))
    assert opened == {"phone": phone, "params": [code, "5"]}
    # ...and once sent, not even the ciphertext is kept.
    assert set(json.loads(stored_payload())) == {"template", "challenge_id"}


def test_the_answer_does_not_reveal_whether_an_account_exists(client, sim, clock):
    from tests.conftest import make_citizen

    known = _phone(13)
    make_citizen(client.application, phone=known)
    a, b = send(client, known), send(client, _phone(14))
    a_body, b_body = a.get_json(), b.get_json()
    assert a_body.pop("challenge_id") != b_body.pop("challenge_id")  # each code its own, nothing else
    assert (a.status_code, a_body) == (b.status_code, b_body)


def test_send_with_idempotency_key_replays_instead_of_sending_twice(client, sim):
    phone = _phone(15)
    key = {"Idempotency-Key": "sms-send-0000001"}
    a, b = send(client, phone, **key), send(client, phone, **key)
    assert a.status_code == b.status_code == 202 and b.headers.get("Idempotent-Replayed") == "true"
    assert len(sms_jobs()) == 1


def test_login_with_idempotency_key_replays_the_same_tokens(client, sim):
    phone = _phone(16)
    send(client, phone)
    deliver()
    code = code_on_phone(sim, phone)
    key = {"Idempotency-Key": "sms-login-000001"}
    a, b = login(client, phone, code, **key), login(client, phone, code, **key)
    assert a.status_code == b.status_code == 200 and a.get_json() == b.get_json()


def test_job_is_dead_when_the_provider_rejects_the_template(client, sim, app):
    otp = app.config["SMS_TEMPLATE_OTP"]
    httpx.put(sim.url + f"_sim/templates/{otp}", json={"approved": False}).raise_for_status()
    phone = _phone(17)
    send(client, phone)
    assert deliver() == [DEAD]
    [job] = sms_jobs()
    assert job.status == DEAD and "FailedOperation.TemplateIncorrectOrUnapproved" in job.last_error
    assert phone not in job.last_error and job.attempts == 1
    assert messages(sim, phone) == []


def test_job_retries_after_a_provider_5xx_and_then_delivers(client, sim, clock):
    httpx.post(sim.url + "_sim/faults", json={"http_5xx_rate": 1.0}).raise_for_status()
    phone = _phone(18)
    send(client, phone)
    assert deliver() == [RETRYING]
    [job] = sms_jobs()
    assert job.status == RETRYING and "ServerNetworkError" in job.last_error
    httpx.post(sim.url + "_sim/faults", json={"http_5xx_rate": 0.0}).raise_for_status()
    clock.advance(5)  # past the backoff
    assert deliver() == [SUCCEEDED]
    assert login(client, phone, code_on_phone(sim, phone)).status_code == 200
