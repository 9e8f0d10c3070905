"""What follows the person when two accounts turn out to be one: bookings that clash under the
one-booking-per-item-and-day rule, and a 差评's rectification task with its evaluation."""

from __future__ import annotations

import uuid
from typing import Any

from core.db import db
from domain.accounts import merge
from domain.accounts import service as accounts
from domain.accounts.models import Account
from domain.appointments.models import AppointmentSlot
from domain.auth import sessions
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.appointments.conftest import URL, book, make_hall, next_working_day, slots
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator
from tests.evaluations.test_evaluations import _completed, rate
from tests.forwarding.conftest import province, yiwang_http  # noqa: F401 - fixtures


def wechat_citizen(app: Any) -> dict:
    """A mini-program account: a WeChat openid only, no phone, not verified."""
    svc = app.extensions["yiwang"]
    session = db.session()
    login = accounts.login_wechat(
        session, encryptor=svc.encryptor, appid="wx-test", openid=uuid.uuid4().hex, unionid=None,
        session_key="k" * 24,
    )  # fmt: skip
    pair = sessions.start_session(
        session, tokens=svc.tokens, policy=svc.citizen_policy, account=login.account, channel="miniprogram",
        device_label="WeChat",
    )  # fmt: skip
    return {"account_id": pair.account_id, "headers": {"Authorization": f"Bearer {pair.access_token}"}}


def test_binding_a_phone_merges_two_bookings_of_the_same_day_into_one_place(app: Any, client: Any) -> None:
    hall, day, phone = make_hall(app), next_working_day(app), "13912345678"
    on_app, in_wechat = make_citizen(app, phone=phone), wechat_citizen(app)
    listed = slots(client, on_app, hall, day).get_json()
    assert book(client, on_app, listed[0]["id"]).status_code == 201
    assert book(client, in_wechat, listed[1]["id"]).status_code == 201
    svc = app.extensions["yiwang"]
    session = db.session()
    # The mini-program user binds the phone of their app account: the same person, so one account.
    accounts.bind_phone(
        session, encryptor=svc.encryptor, hasher=svc.hasher,
        account=session.get(Account, in_wechat["account_id"]), phone=phone,
    )  # fmt: skip
    session.commit()
    db.session.remove()
    survivor = next(
        who for who in (on_app, in_wechat) if db.session.get(Account, who["account_id"]).status == "active"
    )
    mine = client.get(URL, headers=survivor["headers"]).get_json()
    mine = mine["items"] if isinstance(mine, dict) else mine
    active = [a for a in mine if a["status"] == "booked" and a["day"] == day.isoformat()]
    assert len(active) == 1  # one person, one place that day
    booked = sum(db.session.get(AppointmentSlot, s["id"]).booked for s in listed[:2])
    assert booked == 1  # the other place went back to the hall


def test_the_rectification_task_follows_its_evaluation_on_a_merge(app: Any, client: Any, zhang: dict) -> None:  # noqa: F811
    officer = admin_headers(client, make_operator(app, username="rect-op", roles=("case_operator",)))
    app_id = _completed(client, zhang)
    assert rate(client, zhang, app_id, level="不满意", reason="窗口态度差").status_code == 201
    task_id = client.get("/admin/v1/rectifications?status=open", headers=officer).get_json()["items"][0]["id"]
    client.post(f"/admin/v1/rectifications/{task_id}/response", json={"response": "已整改"}, headers=officer)
    survivor = wechat_citizen(app)
    session = db.session()
    source, target = session.get(Account, zhang["account_id"]), session.get(Account, survivor["account_id"])
    assert merge.can_merge(session, source=source, target=target)
    merge.fold_into(session, source=source, target=target, actor_id="test", reason="test")
    session.commit()
    decided = client.post(
        f"/v1/applications/{app_id}/evaluation/decision", json={"accept": True}, headers=survivor["headers"]
    )
    assert decided.status_code == 200, decided.get_json()
