"""A password an admin chose must be replaced: after a reset or an admin's create, the operator
logs in but may only change the password, read themselves and log out until they do."""

from __future__ import annotations

from typing import Any

import pyotp
from sqlalchemy import select

from api.idempotency import HEADER
from core import clock as clock_mod
from core.audit import AuditEvent
from tests.domain.operators.factories import admin_headers, login, make_operator, totp_now

ME = "/admin/v1/me/password"
NEW_TOTP = "/admin/v1/me/totp"
JOBS = "/admin/v1/jobs"  # any route of the operator's role
RESET_PASSWORD = "the admin knows this one"
OWN_PASSWORD = "only I know this passphrase"
EN = {"Accept-Language": "en"}


def _bearer(resp: Any) -> dict:
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def _events(db_session: Any, action: str, target_id: str) -> list[AuditEvent]:
    db_session.rollback()
    return list(
        db_session.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target_id == target_id)
        )
    )


def _change(
    client: Any,
    headers: dict,
    operator: dict,
    key: str,
    *,
    current: str,
    new: str,
    new_totp: str | None = None,
) -> Any:
    body = {"current_password": current, "totp_code": totp_now(operator), "new_password": new}
    if new_totp is not None:
        body["new_totp_code"] = new_totp
    return client.post(ME, json=body, headers=headers | {HEADER: key})


def _new_totp(client: Any, headers: dict, key: str) -> str:
    """POST /admin/v1/me/totp; the new secret the operator's phone now holds."""
    resp = client.post(NEW_TOTP, headers=headers | {HEADER: key})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert pyotp.parse_uri(body["totp_uri"]).secret == body["totp_secret"]
    return body["totp_secret"]


def _reset(client: Any, app: Any, operator: dict, admin: dict | None = None, key: str = "reset-1") -> dict:
    """An admin (alice, made here unless `admin` headers are given) resets `operator`; returns the
    operator as their new phone and password know it."""
    admin = admin or admin_headers(client, make_operator(app, username="alice"))
    url = f"/admin/v1/operators/{operator['id']}/reset-credentials"
    done = client.post(url, json={"new_password": RESET_PASSWORD}, headers=admin | {HEADER: key})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["operator"]["must_change_password"] is True
    return operator | {"password": RESET_PASSWORD, "secret": done.get_json()["totp_secret"]}


def test_after_a_reset_the_operator_changes_the_password_before_anything_else(app, client, clock, db_session):
    bob = make_operator(app, username="bob", roles=("ops",))
    assert client.get(JOBS, headers=admin_headers(client, bob)).status_code == 200  # before the reset
    bob = _reset(client, app, bob)
    clock.advance(30)

    logged_in = login(client, bob)
    headers = _bearer(logged_in)
    assert logged_in.get_json()["must_change_password"] is True
    assert logged_in.get_json()["operator"]["must_change_password"] is True

    refused = client.get(JOBS, headers=headers)
    assert refused.status_code == 403
    error = refused.get_json()["error"]
    assert error["code"] == "admin.password_change_required"
    assert error["message"].startswith("您的密码由管理员设置，请先修改密码")
    assert error["details"] == {"change_password": ME}
    english = client.get(JOBS, headers=headers | EN).get_json()["error"]
    assert english["code"] == "admin.password_change_required"
    assert english["message"].startswith("Your password was set by an admin; change it")
    # A write is refused as well.
    replay = client.post(f"{JOBS}/no-such-job/replay", headers=headers)
    assert (
        replay.status_code == 403 and replay.get_json()["error"]["code"] == "admin.password_change_required"
    )

    me = client.get("/admin/v1/me", headers=headers)  # reading oneself still works
    assert me.status_code == 200 and me.get_json()["operator"]["must_change_password"] is True

    clock.advance(30)
    same = _change(client, headers, bob, "same", current=RESET_PASSWORD, new=RESET_PASSWORD)
    assert same.status_code == 422 and same.get_json()["error"]["code"] == "admin.password_unchanged"
    assert same.get_json()["error"]["message"] == "新密码不能与当前密码相同"
    assert client.get(JOBS, headers=headers).status_code == 403  # still required

    new_secret = _new_totp(client, headers, "totp")
    new_code = pyotp.TOTP(new_secret).at(clock_mod.timestamp())
    changed = _change(
        client, headers, bob, "mine", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=new_code
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["operator"]["must_change_password"] is False
    assert client.get(JOBS, headers=headers).status_code == 200  # the same session, now unblocked
    clock.advance(30)
    again = login(client, bob | {"password": OWN_PASSWORD, "secret": new_secret})
    assert again.status_code == 200 and again.get_json()["must_change_password"] is False

    [reset] = _events(db_session, "operator.credentials_reset", bob["id"])
    assert reset.details["must_change_password"] is True
    changes = [e for e in _events(db_session, "operator.password_change", bob["id"]) if e.outcome == "ok"]
    assert [e.details.get("must_change_password") for e in changes] == [{"from": True, "to": False}]
    logins = _events(db_session, "admin.login", bob["id"])
    assert sorted(str((e.details or {}).get("must_change_password")) for e in logins) == [
        "None", "None", "True"
    ]  # fmt: skip
    refused_rows = [
        e for e in db_session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.request"))
        if e.actor_id == bob["id"] and e.details["path"] == JOBS and e.details["status"] == 403
    ]  # fmt: skip
    assert len(refused_rows) == 3 and {e.outcome for e in refused_rows} == {"denied"}


def test_a_new_password_equal_to_the_current_one_is_refused_in_english_too(app, client, clock):
    carol = make_operator(app, username="carol", roles=("auditor",))
    headers = _bearer(login(client, carol))
    clock.advance(30)
    password = carol["password"]
    same = _change(client, headers | EN, carol, "same", current=password, new=password)
    assert same.status_code == 422
    error = same.get_json()["error"]
    assert error["code"] == "admin.password_unchanged"
    assert error["message"] == "The new password must differ from the current one"
    assert error["fields"] == {"new_password": ["must differ from the current password"]}
    clock.advance(30)
    # Refused before the proof: the code was not used up and no failure was counted.
    assert login(client, carol).status_code == 200


def test_a_flagged_operator_can_log_out(app, client, clock):
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)))
    clock.advance(30)
    headers = _bearer(login(client, bob))
    assert client.post("/admin/v1/auth/logout", headers=headers).status_code == 204
    ended = client.get("/admin/v1/me", headers=headers)
    assert ended.status_code == 401 and ended.get_json()["error"]["code"] == "admin.session_revoked"


def test_an_operator_an_admin_creates_must_change_the_password(app, client, clock):
    admin = admin_headers(client, make_operator(app))  # made directly: not asked to change
    body = {"username": "dave", "display_name": "Dave", "password": "chosen by alice", "roles": ["ops"]}
    created = client.post("/admin/v1/operators", json=body, headers=admin)
    assert created.status_code == 201 and created.get_json()["operator"]["must_change_password"] is True
    assert client.get(JOBS, headers=admin).status_code == 403  # alice lacks ops; not the flag
    secret = created.get_json()["totp_secret"]
    dave = {"username": "dave", "password": body["password"], "secret": secret}
    logged_in = login(client, dave, code=pyotp.TOTP(secret).at(clock_mod.timestamp()))
    assert logged_in.get_json()["must_change_password"] is True
    refused = client.get(JOBS, headers=_bearer(logged_in))
    assert refused.get_json()["error"]["code"] == "admin.password_change_required"
    listed = {o["username"]: o for o in client.get("/admin/v1/operators", headers=admin).get_json()}
    assert listed["dave"]["must_change_password"] is True and listed["alice"]["must_change_password"] is False


def test_a_flagged_hall_officer_cannot_check_certificates_either(app, client, clock):
    desk = _reset(client, app, make_operator(app, username="desk", roles=("hall_officer",)))
    clock.advance(30)
    resp = client.post("/v1/certificate-verifications", json={}, headers=_bearer(login(client, desk)))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "admin.password_change_required"


def test_the_change_also_replaces_the_totp_secret_the_admin_saw(app, client, clock, db_session):
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)))
    clock.advance(30)
    headers = _bearer(login(client, bob))
    first = client.post(NEW_TOTP, headers=headers | {HEADER: "totp-1"})
    assert first.status_code == 200, first.get_json()
    new_secret = first.get_json()["totp_secret"]
    assert new_secret != bob["secret"]
    retry = client.post(NEW_TOTP, headers=headers | {HEADER: "totp-1"})
    assert retry.get_json()["totp_secret"] == new_secret  # a lost answer loses no secret
    assert new_secret not in repr(client.get("/admin/v1/me", headers=headers).get_json())
    clock.advance(30)

    # A code of the secret the admin saw is not a code of the new one.
    old_code = totp_now(bob)
    wrong = _change(
        client, headers | EN, bob, "old", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=old_code
    )
    assert wrong.status_code == 422
    error = wrong.get_json()["error"]
    assert error["code"] == "admin.totp_code_invalid"
    assert error["message"].startswith("The new one-time code is wrong")
    assert list(error["fields"]) == ["new_totp_code"]
    missing = _change(client, headers, bob, "none", current=RESET_PASSWORD, new=OWN_PASSWORD)
    assert missing.status_code == 422 and missing.get_json()["error"]["code"] == "admin.totp_code_invalid"
    assert missing.get_json()["error"]["message"].startswith("新动态口令错误")
    assert client.get(JOBS, headers=headers).status_code == 403  # nothing changed

    new_code = pyotp.TOTP(new_secret).at(clock_mod.timestamp())
    done = _change(client, headers, bob, "new", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=new_code)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["operator"]["must_change_password"] is False
    assert client.get(JOBS, headers=headers).status_code == 200
    clock.advance(30)
    # The secret the admin saw no longer opens a session; the operator's own does.
    refused = login(client, bob | {"password": OWN_PASSWORD})
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "admin.login_failed"
    fresh = login(client, bob | {"password": OWN_PASSWORD, "secret": new_secret})
    assert fresh.status_code == 200 and fresh.get_json()["must_change_password"] is False
    assert client.get(JOBS, headers=_bearer(fresh)).status_code == 200

    [asked] = _events(db_session, "operator.totp_requested", bob["id"])
    assert asked.actor_id == bob["id"] and asked.details == {"replaced_pending": False}
    [changed] = [e for e in _events(db_session, "operator.password_change", bob["id"]) if e.outcome == "ok"]
    assert changed.details["totp"] == "replaced"
    every_row = [e.details for e in db_session.scalars(select(AuditEvent))]
    assert new_secret not in repr(every_row)


def test_without_a_new_secret_the_password_is_not_changed(app, client, clock):
    admin = admin_headers(client, make_operator(app, username="alice"))
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)), admin)
    clock.advance(30)
    headers = _bearer(login(client, bob))
    clock.advance(30)
    refused = _change(
        client, headers | EN, bob, "k1", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=totp_now(bob)
    )
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "admin.totp_enrolment_required"
    assert error["message"].startswith("An admin has seen your authenticator secret: get a new one")
    assert error["details"] == {"new_totp": NEW_TOTP}
    assert client.get(JOBS, headers=headers).status_code == 403
    clock.advance(30)
    assert login(client, bob).status_code == 200  # the password stayed the admin's

    # A secret asked for before another reset is gone with it.
    _new_totp(client, headers, "before-reset")
    bob = _reset(client, app, bob, admin, "reset-2")
    clock.advance(30)
    headers = _bearer(login(client, bob))
    again = _change(client, headers, bob, "k2", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp="123456")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "admin.totp_enrolment_required"


def test_an_operator_without_the_flag_gets_no_new_secret_here(app, client, clock):
    carol = make_operator(app, username="carol", roles=("auditor",))
    headers = _bearer(login(client, carol))
    resp = client.post(NEW_TOTP, headers=headers | EN | {HEADER: "t"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "admin.totp_enrolment_not_needed"
    clock.advance(30)
    # Their password change needs nothing new.
    done = _change(client, headers, carol, "c", current=carol["password"], new=OWN_PASSWORD)
    assert done.status_code == 200, done.get_json()


def test_a_new_secret_asked_for_by_a_session_a_reset_just_ended_is_not_kept(app, client, clock, monkeypatch):
    """The reset commits after the request's token check, before it locks the operator: the
    request is refused as the ended session it is, and the secret it would have handed out
    cannot later stand in for the one the operator asks for after the reset."""
    from core.db import db
    from domain.operators import credential_changes as service
    from domain.operators.audit_log import CLI_ACTOR
    from domain.operators.models import Operator

    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)))
    clock.advance(30)
    headers = _bearer(login(client, bob))
    locked_row = service._locked_row
    raced: list[str] = []

    def reset_meanwhile(session: Any, operator_id: str) -> Any:
        if raced:  # the reset's own lock
            return locked_row(session, operator_id)
        raced.append(operator_id)
        other = db.session.session_factory()
        try:
            service.reset_credentials(
                other, encryptor=app.extensions["yiwang"].encryptor, actor=CLI_ACTOR,
                operator_id=operator_id, new_password="a second reset password",
            )  # fmt: skip
        finally:
            other.close()
        return locked_row(session, operator_id)

    monkeypatch.setattr(service, "_locked_row", reset_meanwhile)
    refused = client.post(NEW_TOTP, headers=headers | {HEADER: "totp-1"})
    monkeypatch.setattr(service, "_locked_row", locked_row)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "admin.session_revoked"
    assert "totp_secret" not in refused.get_data(as_text=True)
    db.session.remove()
    assert db.session.get(Operator, bob["id"]).totp_pending_enc is None


def test_a_locked_out_flagged_operator_is_told_of_the_lockout_first(app, client, clock):
    """Wrong current passwords lock the operator out; from then on every change answers 403
    `admin.locked` with the wait, not a complaint about the new secret they cannot use yet."""
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)))
    clock.advance(30)
    headers = _bearer(login(client, bob))
    new_secret = _new_totp(client, headers, "t1")
    for attempt in range(app.config["ADMIN_LOCKOUT_THRESHOLD"]):
        clock.advance(30)
        code = pyotp.TOTP(new_secret).at(clock_mod.timestamp())
        wrong = _change(client, headers, bob, f"w{attempt}", current="not my password", new=OWN_PASSWORD,
                        new_totp=code)  # fmt: skip
        assert wrong.status_code == 403, wrong.get_json()
    assert wrong.get_json()["error"]["code"] == "admin.locked"
    clock.advance(30)
    for key, new_totp in (("no-code", None), ("bad-code", "000000")):
        refused = _change(
            client, headers, bob, key, current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=new_totp
        )
        assert refused.status_code == 403, refused.get_json()
        assert refused.get_json()["error"]["code"] == "admin.locked"
        assert int(refused.headers["Retry-After"]) > 0


def test_a_key_used_before_another_reset_gets_a_new_secret_not_the_discarded_one(app, client, clock):
    """A phone that asked for a secret, was reset again (the secret discarded, its session ended)
    and retries with the same Idempotency-Key from its new session gets a new secret it can
    finish the change with, not a replay of the one the reset threw away."""
    admin = admin_headers(client, make_operator(app, username="alice"))
    bob = _reset(client, app, make_operator(app, username="bob", roles=("ops",)), admin)
    clock.advance(30)
    discarded = _new_totp(client, _bearer(login(client, bob)), "totp-1")
    bob = _reset(client, app, bob, admin, "reset-2")
    clock.advance(30)
    headers = _bearer(login(client, bob))
    retried = client.post(NEW_TOTP, headers=headers | {HEADER: "totp-1"})
    assert retried.status_code == 200, retried.get_json()
    assert "Idempotent-Replayed" not in retried.headers
    secret = retried.get_json()["totp_secret"]
    assert secret != discarded
    clock.advance(30)  # the login used up this step's code of the current secret
    new_code = pyotp.TOTP(secret).at(clock_mod.timestamp())
    done = _change(client, headers, bob, "new", current=RESET_PASSWORD, new=OWN_PASSWORD, new_totp=new_code)
    assert done.status_code == 200, done.get_json()
