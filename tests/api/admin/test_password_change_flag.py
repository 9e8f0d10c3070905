"""The new TOTP secret an operator who must change their password asks for lasts only a while,
and an admin can ask an operator to change their password without choosing it for them."""

from __future__ import annotations

import pyotp

from api.idempotency import HEADER
from core import clock as clock_mod
from tests.api.admin.test_password_change_required import (
    EN,
    JOBS,
    OWN_PASSWORD,
    RESET_PASSWORD,
    _bearer,
    _change,
    _events,
    _new_totp,
    _reset,
)
from tests.domain.operators.factories import admin_headers, login, make_operator


def test_a_new_secret_left_pending_too_long_no_longer_replaces_the_old_one(app, client, clock):
    """A secret shown on a screen and left there (a shared desk, a screenshot) is not good for
    ever: the change must follow within ADMIN_TOTP_PENDING_TTL, else the operator asks again."""
    ttl = app.config["ADMIN_TOTP_PENDING_TTL"]
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)))
    clock.advance(30)
    headers = _bearer(login(client, bob))
    stale = _new_totp(client, headers, "totp-1")
    clock.advance(ttl + 30)
    headers = _bearer(login(client, bob))  # the first session has idled out meanwhile
    clock.advance(30)  # the login used this step's code
    code = pyotp.TOTP(stale).at(clock_mod.timestamp())
    refused = _change(
        client, headers | EN, bob, "k1", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=code
    )
    assert refused.status_code == 409, refused.get_json()
    error = refused.get_json()["error"]
    assert error["code"] == "admin.totp_enrolment_expired"
    assert error["message"].startswith("The new authenticator secret was not used in time")
    assert error["details"] == {"new_totp": "/admin/v1/me/totp"}
    zh = _change(client, headers, bob, "k2", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=code)
    assert zh.get_json()["error"]["message"].startswith("新的动态口令密钥未在")
    assert client.get(JOBS, headers=headers).status_code == 403  # nothing changed
    clock.advance(30)
    assert login(client, bob).status_code == 200  # still the admin's password and secret

    fresh = _new_totp(client, headers, "totp-2")
    clock.advance(ttl - 90)
    headers = _bearer(login(client, bob))
    clock.advance(30)  # still within the lifetime
    code = pyotp.TOTP(fresh).at(clock_mod.timestamp())
    done = _change(client, headers, bob, "k3", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=code)
    assert done.status_code == 200, done.get_json()
    assert client.get(JOBS, headers=headers).status_code == 200


def test_an_admin_can_ask_an_operator_to_change_their_password(app, client, clock, db_session):
    """A suspected leak: the admin flags the operator without choosing a password for them; the
    operator is held to the change (and a new TOTP secret) from their next request."""
    admin = admin_headers(client, make_operator(app, username="alice"))
    bob = make_operator(app, username="bob", roles=("ops",))
    headers = admin_headers(client, bob)
    assert client.get(JOBS, headers=headers).status_code == 200
    url = f"/admin/v1/operators/{bob['id']}"
    flagged = client.patch(url, json={"must_change_password": True}, headers=admin | {HEADER: "flag-1"})
    assert flagged.status_code == 200, flagged.get_json()
    assert flagged.get_json()["must_change_password"] is True
    refused = client.get(JOBS, headers=headers)  # the session already open
    assert (
        refused.status_code == 403 and refused.get_json()["error"]["code"] == "admin.password_change_required"
    )
    [event] = [
        e for e in _events(db_session, "operator.update", bob["id"]) if "must_change_password" in e.details
    ]
    assert event.details["must_change_password"] == {"from": False, "to": True}

    clearing = client.patch(
        url, json={"must_change_password": False}, headers=admin | EN | {HEADER: "flag-2"}
    )
    assert clearing.status_code == 422
    assert clearing.get_json()["error"]["fields"]["must_change_password"][0].startswith("only true")

    clock.advance(30)
    secret = _new_totp(client, headers, "totp-1")
    code = pyotp.TOTP(secret).at(clock_mod.timestamp())
    done = _change(client, headers, bob, "k1", current=bob["password"], new=OWN_PASSWORD, new_totp=code)
    assert done.status_code == 200, done.get_json()
    assert client.get(JOBS, headers=headers).status_code == 200
