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
