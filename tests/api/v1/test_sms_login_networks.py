"""SMS login and strangers, the citizen's side: whose network address changes (Wi-Fi to 4G and
back), whose send is retried from another network, or whose code was asked for before askers were
kept, still logs in with the code on their phone (docs/identity.md)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from domain.auth.models import SmsChallenge
from tests.api.v1.test_sms_login import (
    _phone,
    advance,
    code_on_phone,
    deliver,
    login,
    send,
)

WIFI = "10.50.0.1"
MOBILE = "10.51.0.1"


@pytest.fixture
def sim(sms_sim):
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


def test_the_latest_code_on_the_phone_opens_a_session_after_a_resend_from_another_address(client, sim, clock):
    """Asked on Wi-Fi, no SMS yet; the phone drops to 4G and the citizen taps "resend"; back on
    Wi-Fi they type the newest SMS. Before the change the resend replaced the first code and the
    newest code opened a session; now the Wi-Fi login is checked against the first code only."""
    phone = _phone(901)
    assert send(client, phone, ip=WIFI).status_code == 202
    deliver()
    advance(clock, sim, 61)
    assert send(client, phone, ip=MOBILE).status_code == 202
    deliver()
    newest = code_on_phone(sim, phone)
    r = login(client, phone, newest, ip=WIFI)
    assert r.status_code == 200, r.get_json()


def test_a_code_used_earlier_from_this_address_does_not_hide_the_new_one(client, sim, clock):
    """Logged in at home on Wi-Fi this morning; out on 4G, logged out, asks for a code again and
    types it once back home: the morning's used code, not the new one, is checked (otp_expired)."""
    phone = _phone(903)
    send(client, phone, ip=WIFI)
    deliver()
    assert login(client, phone, code_on_phone(sim, phone), ip=WIFI).status_code == 200
    advance(clock, sim, 3600)
    assert send(client, phone, ip=MOBILE).status_code == 202
    deliver()
    r = login(client, phone, code_on_phone(sim, phone), ip=WIFI)
    assert r.status_code == 200, r.get_json()


def test_a_resend_replaces_a_code_asked_for_before_askers_were_kept(client, sim, clock, db_session):
    """Migration: a code asked for just before the upgrade (requested_by NULL) and still waiting
    for delivery is replaced by the citizen's resend, as every earlier code was: not sent too."""
    phone = _phone(904)
    old = send(client, phone, ip=WIFI).get_json()["challenge_id"]
    db_session.execute(update(SmsChallenge).where(SmsChallenge.id == old).values(requested_by=None))
    db_session.commit()
    advance(clock, sim, 61)
    assert send(client, phone, ip=WIFI).status_code == 202
    deliver()
    advance(clock, sim, 31)  # the provider's 30-second limit per number; the retry's backoff
    advance(clock, sim, 60)
    deliver()
    texts = [
        m["params"][0]
        for m in httpx.get(sim.url + "_sim/messages", params={"phone": phone}).json()["messages"]
    ]
    db_session.expire_all()
    assert db_session.get(SmsChallenge, old).requested_by is None
    assert len(texts) == 1, texts  # one code on the phone, the one a login opens


def test_a_send_retried_from_a_new_address_after_a_lost_answer_keeps_the_code_on_the_phone(client, sim):
    """The answer to the send is lost as the phone leaves Wi-Fi; the app retries with the same
    Idempotency-Key over 4G. Before, the retry was replayed (one code, its challenge_id); now a
    second code is made, and the code that arrived, sent with the challenge_id the retry
    answered, is wrong."""
    phone = _phone(905)
    key = {"Idempotency-Key": "send-905-once"}
    assert send(client, phone, ip=WIFI, **key).status_code == 202  # the answer never arrives
    deliver()
    arrived = code_on_phone(sim, phone)
    retried = send(client, phone, ip=MOBILE, **key)
    assert retried.status_code == 202
    deliver()
    r = login(client, phone, arrived, ip=MOBILE, challenge_id=retried.get_json()["challenge_id"])
    assert r.status_code == 200, r.get_json()
