"""Operators' credentials: changing one's own password, an admin resetting password and TOTP."""

from __future__ import annotations

from typing import Any

import pyotp
from sqlalchemy import select

from api.idempotency import HEADER
from core.audit import AuditEvent
from tests.domain.operators.factories import PASSWORD, admin_headers, login, make_operator, totp_now

ME = "/admin/v1/me/password"
NEW_PASSWORD = "a brand new passphrase"


def _change(client: Any, headers: dict, operator: dict, key: str, **body: str) -> Any:
    payload = {"current_password": PASSWORD, "totp_code": totp_now(operator), "new_password": NEW_PASSWORD}
    return client.post(ME, json=payload | body, headers=headers | {HEADER: key})


def _actions(db_session: Any, action: str) -> list[AuditEvent]:
    db_session.rollback()
    return list(
        db_session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.at))
    )


def test_an_operator_changes_their_own_password_with_the_current_one_and_a_code(
    app, client, clock, db_session
):
    carol = make_operator(app, username="carol", roles=("auditor",))
    other_desk = admin_headers(client, carol)
    clock.advance(30)
    here = admin_headers(client, carol)
    clock.advance(30)  # a code the logins did not use
    wrong = _change(client, here, carol, "k1", current_password="not my password")
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "admin.reauth_failed"
    assert wrong.get_json()["error"]["message"] == "当前密码或动态口令错误"
    en = _change(client, here | {"Accept-Language": "en"}, carol, "k2", totp_code="000000")
    assert en.status_code == 403 and "one-time code is wrong" in en.get_json()["error"]["message"]
    weak = _change(client, here, carol, "k3", new_password="short")
    assert weak.status_code == 422 and weak.get_json()["error"]["code"] == "admin.password_weak"
    with_name = _change(client, here, carol, "k4", new_password="carol's long password")
    assert with_name.status_code == 422
    done = _change(client, here, carol, "k5")
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["sessions_ended"] == 1 and done.get_json()["operator"]["username"] == "carol"
    retry = _change(client, here, carol, "k5")
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    # The same code once more (with a new password that differs, so the proof is what is judged).
    again = _change(client, here, carol, "k6", current_password=NEW_PASSWORD, new_password="yet another one")
    assert again.status_code == 403 and again.get_json()["error"]["code"] == "admin.reauth_failed"
    # The other desk's session has ended; this one goes on.
    ended = client.get("/admin/v1/me", headers=other_desk)
    assert ended.status_code == 401 and ended.get_json()["error"]["code"] == "admin.session_revoked"
    assert client.get("/admin/v1/me", headers=here).status_code == 200
    clock.advance(30)
    assert login(client, carol).status_code == 401  # the old password no longer opens a session
    clock.advance(30)
    assert login(client, carol, password=NEW_PASSWORD).status_code == 200
    # The test clock stands still between requests, so the audit lines share their time: compare
    # them as a set of outcomes, not in order.
    outcomes = sorted((e.outcome, e.actor_id) for e in _actions(db_session, "operator.password_change"))
    assert outcomes == [("failed", carol["id"])] * 3 + [("ok", carol["id"])]


def test_guessing_the_current_password_with_a_session_locks_like_a_login(app, client, clock):
    carol = make_operator(app, username="carol", roles=("auditor",))
    here = admin_headers(client, carol)
    codes = []
    for n in range(6):
        clock.advance(30)
        codes.append(_change(client, here, carol, f"guess-{n}", current_password=f"guess {n}").status_code)
    assert codes[:4] == [403] * 4
    locked = _change(client, here, carol, "guess-last")
    assert locked.status_code == 403 and locked.get_json()["error"]["code"] == "admin.locked", (
        locked.get_json()
    )
    clock.advance(30)
    assert login(client, carol).get_json()["error"]["code"] == "admin.locked"


def test_an_admin_resets_a_forgotten_password_and_totp(app, client, clock, db_session):
    alice = make_operator(app)  # admin
    carol = make_operator(app, username="carol", roles=("case_operator",))
    carol_desk = admin_headers(client, carol)
    admin = admin_headers(client, alice)
    url = f"/admin/v1/operators/{carol['id']}/reset-credentials"
    body = {"new_password": NEW_PASSWORD}
    refused = client.post(url, json=body, headers=carol_desk | {HEADER: "r0"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "admin.role_required"
    weak = client.post(url, json={"new_password": "short"}, headers=admin | {HEADER: "r1"})
    assert weak.status_code == 422 and weak.get_json()["error"]["code"] == "admin.password_weak"
    mine = client.post(f"/admin/v1/operators/{alice['id']}/reset-credentials", json=body,
                       headers=admin | {HEADER: "r2", "Accept-Language": "en"})  # fmt: skip
    assert mine.status_code == 409 and mine.get_json()["error"]["code"] == "admin.reset_self"
    assert "change your password" in mine.get_json()["error"]["message"]
    nobody = client.post("/admin/v1/operators/no-such-operator/reset-credentials", json=body,
                         headers=admin | {HEADER: "r3"})  # fmt: skip
    assert nobody.status_code == 404
    nul = client.post(
        "/admin/v1/operators/%00x/reset-credentials", json=body, headers=admin | {HEADER: "r3b"}
    )
    assert nul.status_code == 404
    assert client.get("/admin/v1/me", headers=carol_desk).status_code == 200  # nothing happened yet
    done = client.post(url, json=body, headers=admin | {HEADER: "r4"})
    assert done.status_code == 200, done.get_json()
    reset = done.get_json()
    assert reset["sessions_ended"] == 1 and reset["operator"]["username"] == "carol"
    totp = pyotp.parse_uri(reset["totp_uri"])
    assert totp.secret == reset["totp_secret"] != carol["secret"]
    retry = client.post(url, json=body, headers=admin | {HEADER: "r4"})
    assert retry.get_json()["totp_secret"] == reset["totp_secret"]  # a lost answer loses no secret
    ended = client.get("/admin/v1/me", headers=carol_desk)
    assert ended.status_code == 401 and ended.get_json()["error"]["code"] == "admin.session_revoked"
    listing = client.get(f"/admin/v1/operators/{carol['id']}", headers=admin).get_json()
    assert reset["totp_secret"] not in repr(listing)
    clock.advance(30)
    assert login(client, carol, password=NEW_PASSWORD).status_code == 401  # the old phone's code
    assert login(client, carol).status_code == 401  # the old password
    clock.advance(30)
    fresh = login(client, carol | {"secret": reset["totp_secret"]}, password=NEW_PASSWORD)
    assert fresh.status_code == 200, fresh.get_json()
    events = _actions(db_session, "operator.credentials_reset")
    assert [(e.actor_id, e.target_id, e.details["sessions_ended"]) for e in events] == [
        (alice["id"], carol["id"], 1)
    ]
