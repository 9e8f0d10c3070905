"""Two admins disabling each other at the same moment: one succeeds, the other is told it
would leave no admin; the system is never left without one."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from core.db import db
from domain.operators import service
from domain.operators.models import Operator
from tests.domain.operators.factories import admin_headers, make_operator


def test_two_admins_disabling_each_other_at_once_leave_one_admin(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    a = make_operator(app, username="admin-a", roles=("admin",))
    b = make_operator(app, username="admin-b", roles=("admin",))
    ha, hb = admin_headers(client, a), admin_headers(client, b)
    real, barrier = service._active_admins, threading.Barrier(2)

    def paced(session: Any) -> Any:
        # Both checks at the same moment when nothing orders them; a change that waits for the
        # other's lock arrives later, and the first goes on alone after a short wait.
        try:
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return real(session)

    monkeypatch.setattr(service, "_active_admins", paced)
    answers: dict[str, Any] = {}

    def run(name: str, headers: dict, target: str) -> None:
        try:
            resp = app.test_client().patch(
                f"/admin/v1/operators/{target}", json={"status": "disabled"}, headers=headers
            )
            answers[name] = (resp.status_code, (resp.get_json().get("error") or {}).get("code"))
        finally:
            db.remove()

    threads = [
        threading.Thread(target=run, args=("a", ha, b["id"])),
        threading.Thread(target=run, args=("b", hb, a["id"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    db.session.remove()
    admins = [
        o.username
        for o in db.session.scalars(select(Operator))
        if o.status == "active" and "admin" in o.roles
    ]
    assert len(admins) == 1, answers
    assert sorted(code for code, _ in answers.values()) == [200, 409], answers


def test_a_login_meeting_a_credentials_reset_never_keeps_a_session(app: Any, client: Any) -> None:
    """An admin resets an operator's credentials (a phone lost with the password on it) in the
    instant that operator's login, already past the password check, writes its session: the
    session must end with the reset, or the login fail; never a session opened with a password
    that no longer works."""
    from sqlalchemy import event

    from api.idempotency import HEADER
    from domain.operators.models import OperatorSession
    from tests.domain.operators.factories import login

    admin = make_operator(app, username="admin-r", roles=("admin",))
    carol = make_operator(app, username="carol-r", roles=("case_operator",))
    desk = admin_headers(client, admin)
    reset_url = f"/admin/v1/operators/{carol['id']}/reset-credentials"
    answers: dict[str, Any] = {}

    def reset() -> None:
        try:
            resp = app.test_client().post(
                reset_url, json={"new_password": "a brand new passphrase"}, headers=desk | {HEADER: "race-1"}
            )
            answers["reset"] = (resp.status_code, resp.get_json())
        finally:
            db.remove()

    resetter = threading.Thread(target=reset)

    def reset_meanwhile(mapper: Any, connection: Any, target: Any) -> None:
        # The login has checked the password and is writing its session: the reset runs now. It
        # either finishes (nothing holds it back) or waits for the login's transaction.
        if target.operator_id == carol["id"] and not resetter.is_alive() and "reset" not in answers:
            resetter.start()
            resetter.join(1.5)

    event.listen(OperatorSession, "before_insert", reset_meanwhile)
    try:
        signed_in = login(app.test_client(), carol)
    finally:
        event.remove(OperatorSession, "before_insert", reset_meanwhile)
        db.remove()
    resetter.join(30)
    assert answers["reset"][0] == 200, answers
    if signed_in.status_code == 200:
        token = signed_in.get_json()["access_token"]
        me = client.get("/admin/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401, me.get_json()
        assert answers["reset"][1]["sessions_ended"] == 1
    else:
        assert signed_in.status_code == 401, signed_in.get_json()
