"""A retry of POST /admin/v1/me/totp with the same Idempotency-Key, after the secret it handed
out expired (ADMIN_TOTP_PENDING_TTL, shorter than the session's idle timeout), must not replay a
secret that can no longer replace the old one: the replay lives no longer than the secret."""

from __future__ import annotations

import time

import pyotp

from core import clock as clock_mod
from tests.api.admin.test_password_change_required import (
    OWN_PASSWORD,
    RESET_PASSWORD,
    _bearer,
    _change,
    _new_totp,
    _reset,
)
from tests.domain.operators.factories import login, make_operator


def test_a_retried_request_for_a_new_secret_does_not_hand_back_an_expired_one(
    app, client, clock, monkeypatch
):
    # Two seconds, so that Redis (whose expiry runs on the wall clock, not the test's) forgets
    # the replay within the test; the app's clock moves as usual.
    monkeypatch.setitem(app.config, "ADMIN_TOTP_PENDING_TTL", 2)
    ttl = app.config["ADMIN_TOTP_PENDING_TTL"]
    assert app.config["ADMIN_IDLE_TIMEOUT"] > ttl + 60
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)))
    clock.advance(30)
    headers = _bearer(login(client, bob))
    _new_totp(client, headers, "totp-1")  # the answer is lost on the way (the operator never sees it)
    clock.advance(ttl + 30)  # the session is still open (idle timeout 900 s)
    time.sleep(ttl + 0.5)
    again = _new_totp(client, headers, "totp-1")  # the console retries with its key
    code = pyotp.TOTP(again).at(clock_mod.timestamp())
    done = _change(client, headers, bob, "k1", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=code)
    assert done.status_code == 200, done.get_json()
