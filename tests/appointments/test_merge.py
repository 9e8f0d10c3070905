"""Two accounts of one person merged: the duplicate booking the merge cancels gives its place back,
as the slots list shows it to every citizen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.db import db
from domain.accounts import service as accounts
from domain.accounts.models import Account
from tests.api.v1.applications.conftest import relogin
from tests.appointments.conftest import book, make_hall, next_working_day, slots
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator
from tests.domain.test_merge_followups import wechat_citizen

PHONE = "13912345678"


def _check_in(app: Any, client: Any, who: dict, appointment_id: str, hall: str, officer: dict) -> None:
    mine = relogin(app, who)
    code = client.get(f"/v1/appointments/{appointment_id}/check-in-code", headers=mine["headers"]).get_json()
    done = client.post(
        "/admin/v1/appointments/check-in", json={"code": code["code"], "hall_id": hall}, headers=officer
    )
    assert done.status_code == 200, done.get_json()


def _merge_wechat_into_app(app: Any, in_wechat: dict) -> None:
    """The mini-program user binds the phone of their app account: one person, one account."""
    svc = app.extensions["yiwang"]
    session = db.session()
    accounts.bind_phone(
        session, encryptor=svc.encryptor, hasher=svc.hasher,
        account=session.get(Account, in_wechat["account_id"]), phone=PHONE,
    )  # fmt: skip
    session.commit()
    db.session.remove()


def test_a_checked_in_duplicate_cancelled_by_a_merge_gives_its_place_back(
    app: Any, client: Any, clock: Any
) -> None:
    hall, day = make_hall(app, per_window=2), next_working_day(app)
    on_app, in_wechat = make_citizen(app, phone=PHONE), wechat_citizen(app)
    listed = slots(client, on_app, hall, day).get_json()
    first, second = listed[0], listed[1]
    kept = book(client, on_app, first["id"]).get_json()
    dropped = book(client, in_wechat, second["id"]).get_json()
    # Both at the hall early, both checked in (each account at its own desk visit).
    clock.advance(datetime.fromisoformat(first["starts_at"]).timestamp() - 10 * 60 - clock.time())
    officer = admin_headers(client, make_operator(app, username="hall-desk", roles=("hall_officer",)))
    _check_in(app, client, on_app, kept["id"], hall, officer)
    _check_in(app, client, in_wechat, dropped["id"], hall, officer)

    _merge_wechat_into_app(app, in_wechat)

    survivor = relogin(app, on_app)
    mine = client.get("/v1/appointments", headers=survivor["headers"]).get_json()
    statuses = sorted(a["status"] for a in mine if a["day"] == day.isoformat())
    assert statuses == ["cancelled", "checked_in"]  # one person, one place that day
    shown = {s["id"]: s["available"] for s in slots(client, survivor, hall, day).get_json()}
    assert shown[first["id"]] == 1  # the kept visit still holds its place
    assert shown[second["id"]] == 2  # the cancelled duplicate's place is free again
