"""The sweeper deletes what can no longer serve: SMS codes a day after they ended, and the pending
TOTP secrets of operators once they can no longer replace a secret."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select

from core import clock as clock_mod
from core.db import db
from domain.auth.models import SmsChallenge
from domain.operators.models import Operator
from tests.api.admin.test_password_change_required import (
    EN,
    OWN_PASSWORD,
    RESET_PASSWORD,
    _bearer,
    _change,
    _new_totp,
    _reset,
)
from tests.domain.operators.factories import admin_headers, login, make_operator
from workers import sweeper

DAY = 86400


def _sweep(app, monkeypatch) -> dict:
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        return sweeper.run_once(0)


def _send(client, phone: str) -> str:
    resp = client.post("/v1/auth/sms/send", json={"phone": phone}, environ_base={"REMOTE_ADDR": "10.20.0.9"})
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["challenge_id"]


def _challenges() -> set[str]:
    session = db.session()
    session.expire_all()
    return set(session.scalars(select(SmsChallenge.id)))


def test_sms_codes_are_deleted_a_day_after_they_expired(app, client, clock, monkeypatch):
    ttl = app.config["OTP_TTL"]
    old = _send(client, "13912340001")
    clock.advance(ttl + DAY + 60)  # expired a day and a minute ago
    recent = _send(client, "13912340002")
    clock.advance(ttl + 60)  # expired a minute ago: kept for a day
    assert _challenges() == {old, recent}

    done = _sweep(app, monkeypatch)

    assert _challenges() == {recent}
    assert done["sms_challenges_purged"] == 1
    clock.advance(DAY)
    assert _sweep(app, monkeypatch)["sms_challenges_purged"] == 1
    assert _challenges() == set()


def _pending(operator_id: str) -> tuple[str | None, object]:
    session = db.session()
    session.expire_all()
    row = session.get(Operator, operator_id)
    return row.totp_pending_enc, row.totp_pending_at


def test_an_expired_pending_totp_secret_is_erased_and_a_late_change_still_told_it_expired(
    app, client, clock, monkeypatch
):
    ttl = app.config["ADMIN_TOTP_PENDING_TTL"]
    admin = admin_headers(client, make_operator(app, username="alice"))
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)), admin)
    carol = _reset(client, app, make_operator(app, username="carol", roles=("ops",)), admin, "reset-2")
    clock.advance(30)
    stale = _new_totp(client, _bearer(login(client, bob)), "totp-1")
    clock.advance(ttl - 60)
    _new_totp(client, _bearer(login(client, carol)), "totp-2")
    clock.advance(90)  # bob's expired half a minute ago, carol's is a minute and a half old

    done = _sweep(app, monkeypatch)

    secret, asked = _pending(bob["id"])
    assert secret is None and asked is not None  # the secret goes, its time stays
    assert done["pending_totp_purged"] == 1
    assert _pending(carol["id"])[0] is not None
    headers = _bearer(login(client, bob))
    clock.advance(30)  # the login used this step's code
    code = pyotp.TOTP(stale).at(clock_mod.timestamp())
    late = _change(client, headers | EN, bob, "k1", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=code)
    assert late.status_code == 409, late.get_json()
    assert late.get_json()["error"]["code"] == "admin.totp_enrolment_expired"


def test_a_backlog_of_sms_codes_goes_in_bounded_batches_and_live_codes_stay(app, clock):
    from domain.auth import sms_login

    session = db.session()
    now = clock_mod.now()

    def add(expires_in: int) -> str:
        row = SmsChallenge(
            phone_lookup="p", code_hash="h", created_at=now, expires_at=now + timedelta(seconds=expires_in)
        )
        session.add(row)
        session.flush()
        return row.id

    for _ in range(7):
        add(-DAY - 60)  # expired a day and a minute ago
    live, ended = add(300), add(-60)
    session.commit()

    assert sms_login.purge_expired_challenges(session, batch=3, batches=2) == 6  # two batches, then wait
    assert len(_challenges()) == 3
    assert sms_login.purge_expired_challenges(session, batch=3, batches=2) == 1
    assert _challenges() == {live, ended}
