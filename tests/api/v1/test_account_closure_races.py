"""A closure and a submission of one of its drafts at once: the draft is either a case that
blocks the closure or gone before it was sent, never a submitted case of a closed account."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from core import clock
from core.db import db
from domain.accounts.errors import AccountNotFound
from domain.accounts.models import Account, ChannelIdentity
from domain.applications.models import Application
from domain.appointments.models import Appointment, AppointmentSlot
from domain.auth.models import LoginSession
from domain.closure import blockers
from domain.closure import service as closure_service
from domain.complaints.models import Complaint
from domain.evaluations.models import RESPONDED, RectificationTask
from domain.identity.models import IdentityVerification, VerifiedIdentity
from notifications.models import Device, Notification
from tests.api.v1.applications.conftest import officer, seeded, submit, verified  # noqa: F401 - fixtures
from tests.api.v1.identity.conftest import mini_citizen, sims, start, wx  # noqa: F401 - fixtures
from tests.api.v1.test_account_closure import close, finished
from tests.appointments.conftest import book, make_hall, next_working_day, slots
from tests.concurrency import Competing
from tests.conftest import make_citizen
from tests.forwarding.conftest import ready


def during_closure(monkeypatch: Any, app: Any, request: Any) -> list[Competing]:
    """Run `request` (given a test client) once the closure has judged its blockers and holds
    its locks; the list gets the Competing request."""
    real_find = blockers.find
    fired = threading.Event()
    others: list[Competing] = []

    def find_then(session: Any, account_id: str) -> list:
        found = real_find(session, account_id)
        if not fired.is_set():
            fired.set()
            others.append(Competing(app, request))
        return found

    monkeypatch.setattr(blockers, "find", find_then)
    return others


def closed_while(client: Any, who: dict, others: list[Competing]) -> Any:
    """Close `who`'s account (the competing request runs meanwhile); the competing answer."""
    closed = close(client, who)
    assert closed.status_code == 200, closed.get_json()
    session = db.session()
    session.rollback()
    assert session.get(Account, who["account_id"]).closed_at is not None
    return others[0].result()


def test_a_submission_during_the_closure_finds_its_draft_gone(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    zhang = verified(app, 0)
    draft = ready(client, zhang)
    real_find = blockers.find
    fired = threading.Event()
    others: list[Competing] = []

    def find_then_submit(session: Any, account_id: str) -> list:
        found = real_find(session, account_id)
        if not fired.is_set():  # the closure has judged the draft: now the phone submits it
            fired.set()
            others.append(Competing(app, lambda http: submit(http, zhang, draft)))
        return found

    monkeypatch.setattr(blockers, "find", find_then_submit)
    closed = close(client, zhang)
    assert closed.status_code == 200, closed.get_json()
    submitted = others[0].result()
    assert submitted.status_code in (401, 404), submitted.get_json()
    session = db.session()
    session.rollback()
    assert session.get(Account, zhang["account_id"]).closed_at is not None
    left = session.scalars(select(Application.status).where(Application.account_id == zhang["account_id"]))
    assert list(left) == []


def test_an_id_check_passing_during_the_closure_writes_nothing_onto_the_closed_account(
    app: Any,
    client: Any,
    sims: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    who = make_citizen(app)
    others = during_closure(monkeypatch, app, lambda http: start(http, who, "id_check", consent=None))
    answer = closed_while(client, who, others)
    assert answer.status_code in (401, 404), answer.get_json()
    session = db.session()
    session.rollback()
    mine = VerifiedIdentity.account_id == who["account_id"]
    assert list(session.scalars(select(VerifiedIdentity.id).where(mine))) == []
    attempts = IdentityVerification.account_id == who["account_id"]
    assert list(session.scalars(select(IdentityVerification.id).where(attempts))) == []
    # The person's ID number is free for the new account they make afterwards.
    monkeypatch.undo()
    again = start(client, make_citizen(app), "id_check", consent=None)
    assert again.status_code in (200, 201), again.get_json()


def live_sessions(account_id: str) -> list[str]:
    session = db.session()
    session.rollback()
    open_ = LoginSession.account_id == account_id, LoginSession.revoked_at.is_(None)
    return list(session.scalars(select(LoginSession.id).where(*open_)))


def test_a_booking_during_the_closure_is_refused(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    zhang = verified(app, 0)
    hall_id = make_hall(app)
    slot = slots(client, zhang, hall_id, next_working_day(app)).get_json()[0]
    others = during_closure(monkeypatch, app, lambda http: book(http, zhang, slot["id"]))
    booked = closed_while(client, zhang, others)
    assert booked.status_code in (401, 404), booked.get_json()
    session = db.session()
    session.rollback()
    mine = Appointment.account_id == zhang["account_id"]
    assert list(session.scalars(select(Appointment.id).where(mine))) == []
    assert session.get(AppointmentSlot, slot["id"]).booked == 0  # the place went back


def test_a_push_token_registered_during_the_closure_is_refused(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    who = make_citizen(app)
    device = {"provider": "jpush", "token": "jpushtoken0002", "platform": "android"}
    others = during_closure(
        monkeypatch, app, lambda http: http.post("/v1/devices", json=device, headers=who["headers"])
    )
    answer = closed_while(client, who, others)
    assert answer.status_code in (401, 404), answer.get_json()
    session = db.session()
    session.rollback()
    assert list(session.scalars(select(Device.id).where(Device.account_id == who["account_id"]))) == []


def test_a_complaint_filed_during_the_closure_is_refused(app: Any, client: Any, monkeypatch: Any) -> None:
    who = make_citizen(app)
    body = {"kind": "complaint", "category": "efficiency", "text": "窗口排队太久"}
    others = during_closure(
        monkeypatch, app, lambda http: http.post("/v1/complaints", json=body, headers=who["headers"])
    )
    answer = closed_while(client, who, others)
    assert answer.status_code in (401, 404), answer.get_json()
    session = db.session()
    session.rollback()
    mine = Complaint.account_id == who["account_id"]
    assert list(session.scalars(select(Complaint.id).where(mine))) == []


def test_a_login_during_the_closure_opens_no_session_of_the_closed_account(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    phone = "13912349999"
    who = make_citizen(app, phone=phone)

    def login(_http: Any) -> dict:
        with app.app_context():
            return make_citizen(app, phone=phone)

    others = during_closure(monkeypatch, app, login)
    closed = close(client, who)
    assert closed.status_code == 200, closed.get_json()
    with pytest.raises(AccountNotFound):
        others[0].result()
    assert live_sessions(who["account_id"]) == []
    # Logging in again now makes a new, empty account.
    assert make_citizen(app, phone=phone)["account_id"] != who["account_id"]


def test_a_wechat_login_during_the_closure_makes_a_new_account(
    app: Any,
    client: Any,
    wx: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    first = mini_citizen(client, wx)
    code = wx.login_code(first["openid"])
    others = during_closure(
        monkeypatch, app, lambda http: http.post("/v1/auth/miniprogram/login", json={"code": code})
    )
    answer = closed_while(client, first, others)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["account_id"] != first["account_id"]
    assert live_sessions(first["account_id"]) == []


def responded_rectification(client: Any, who: dict, officer: dict) -> tuple[str, str]:  # noqa: F811
    """A completed case of `who` rated 非常不满意 whose rectification the department answered:
    the citizen may now confirm or appeal it (not a blocker yet). The case's id and the task's."""
    rated = finished(client, who, status="completed")
    made = client.post(
        f"/v1/applications/{rated}/evaluation", json={"level": "非常不满意", "reason": "跑了三次"},
        headers=who["headers"],
    )  # fmt: skip
    assert made.status_code in (200, 201), made.get_json()
    task_id = client.get("/admin/v1/rectifications?status=open", headers=officer).get_json()["items"][0]["id"]
    answered = client.post(
        f"/admin/v1/rectifications/{task_id}/response", json={"response": "已改进"}, headers=officer
    )
    assert answered.status_code == 200, answered.get_json()
    return rated, task_id


def test_an_appeal_during_the_closure_does_not_land_on_the_closed_account(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    officer: dict,  # noqa: F811
    monkeypatch: Any,
) -> None:
    zhang = verified(app, 0)
    rated, task_id = responded_rectification(client, zhang, officer)
    body = {"accept": False, "reason": "并未解决"}
    others = during_closure(
        monkeypatch,
        app,
        lambda http: http.post(
            f"/v1/applications/{rated}/evaluation/decision", json=body, headers=zhang["headers"]
        ),
    )
    answer = closed_while(client, zhang, others)
    # Either the appeal came first and blocked the closure, or it waited and was refused: never
    # a closed account with an appeal the department must answer and nobody can read.
    assert answer.status_code in (401, 404), answer.get_json()
    session = db.session()
    session.rollback()
    task = session.get(RectificationTask, task_id)
    assert task.status == RESPONDED and task.appeal_reason_enc is None


def test_a_phone_bound_during_the_closure_stays_free_for_a_new_account(
    app: Any,
    client: Any,
    wx: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    phone = "13912348888"
    first = mini_citizen(client, wx, phone=phone)  # WeChat-only so far
    code = wx.phone_code(first["openid"])
    others = during_closure(
        monkeypatch,
        app,
        lambda http: http.post("/v1/auth/miniprogram/phone", json={"code": code}, headers=first["headers"]),
    )
    answer = closed_while(client, first, others)
    assert answer.status_code in (401, 404), answer.get_json()
    session = db.session()
    session.rollback()
    mine = ChannelIdentity.account_id == first["account_id"]
    assert list(session.scalars(select(ChannelIdentity.kind).where(mine))) == []
    # The number leads nowhere near the closed account: an SMS login with it makes a new one.
    assert make_citizen(app, phone=phone)["account_id"] != first["account_id"]


def test_a_merge_into_an_account_closing_meanwhile_leaves_the_merging_account_whole(
    app: Any,
    client: Any,
    wx: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    phone = "13912347777"
    sms = make_citizen(app, phone=phone)  # the number's account, which closes
    mini = mini_citizen(client, wx, phone=phone)  # binding the number would merge into it
    code = wx.phone_code(mini["openid"])
    others = during_closure(
        monkeypatch,
        app,
        lambda http: http.post("/v1/auth/miniprogram/phone", json={"code": code}, headers=mini["headers"]),
    )
    answer = closed_while(client, sms, others)
    # Refused (the closing account's new session is), or the number was free by then and
    # joined the WeChat account: never the WeChat account folded into the closed one.
    assert answer.status_code in (200, 404), answer.get_json()
    assert answer.status_code == 404 or answer.get_json()["merged"] is False
    session = db.session()
    session.rollback()
    assert session.get(Account, mini["account_id"]).status == "active"
    on_closed = ChannelIdentity.account_id == sms["account_id"]
    assert list(session.scalars(select(ChannelIdentity.kind).where(on_closed))) == []
    assert client.get("/v1/me", headers=mini["headers"]).status_code == 200


def during_erase(monkeypatch: Any, app: Any, request: Any) -> list[Competing]:
    """Run `request` once the closure has deleted the account's rows, before it commits."""
    real_erase = closure_service._erase
    others: list[Competing] = []

    def erase_then(session: Any, owners: list[str]) -> None:
        real_erase(session, owners)
        if not others:
            others.append(Competing(app, request))

    monkeypatch.setattr(closure_service, "_erase", erase_then)
    return others


def test_a_device_removed_while_the_closure_erases_it_is_a_clear_refusal(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    who = make_citizen(app)
    device = {"provider": "jpush", "token": "jpushtoken0003", "platform": "android"}
    made = client.post("/v1/devices", json=device, headers=who["headers"])
    assert made.status_code in (200, 201), made.get_json()
    url = f"/v1/devices/{made.get_json()['id']}"
    others = during_erase(monkeypatch, app, lambda http: http.delete(url, headers=who["headers"]))
    answer = closed_while(client, who, others)
    assert answer.status_code in (401, 404), answer.get_data(as_text=True)  # not a 500


def test_a_notification_read_while_the_closure_erases_it_is_a_clear_refusal(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    who = make_citizen(app)
    session = db.session()
    note = Notification(
        account_id=who["account_id"], dedupe_key="race", event_type="status_changed", title="办件进度",
        body="已受理", params={}, created_at=clock.now(),
    )  # fmt: skip
    session.add(note)
    session.commit()
    url = f"/v1/notifications/{note.id}/read"
    headers = who["headers"] | {"Idempotency-Key": uuid.uuid4().hex}
    others = during_erase(monkeypatch, app, lambda http: http.post(url, headers=headers))
    answer = closed_while(client, who, others)
    assert answer.status_code in (401, 404), answer.get_data(as_text=True)  # not a 500
