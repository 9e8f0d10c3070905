"""Closing one's own account (注销): what blocks it, what it erases, what it keeps, and that the
same WeChat user or phone afterwards starts afresh."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from core import clock as clock_mod
from core.audit import AuditEvent
from core.db import Base, db
from core.outbox.models import OutboxJob
from domain.accounts import merge
from domain.accounts.models import Account, ChannelIdentity
from domain.applications.models import Application, ApplicationFile, ApplicationMaterial, ForwardingOutbox
from domain.appointments.models import Appointment
from domain.auth.models import SmsChallenge
from domain.closure import service as closure
from domain.identity import hall
from domain.wallet.models import WalletCertificate
from integrations.realname.people import DEMO_PEOPLE
from notifications import fanout
from tests.api.v1.applications.conftest import (  # noqa: F401 - fixtures
    SS_CARD,
    create,
    jpeg,
    officer,
    seeded,
    stage,
    upload,
    verified,
)
from tests.api.v1.identity.conftest import mini_citizen, wx  # noqa: F401 - fixtures
from tests.appointments.conftest import book, make_hall, next_working_day, slots
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator
from tests.forwarding.conftest import submitted
from tests.oauth.conftest import bank, tokens_for  # noqa: F401 - fixtures

URL = "/v1/me/closure"
PHONE = "13912340001"


def close(client: Any, who: dict, body: dict | None = None, **hdr: str) -> Any:
    headers = who["headers"] | {"Idempotency-Key": uuid.uuid4().hex} | hdr
    return client.post(URL, json={"confirm": True} if body is None else body, headers=headers)


def finished(client: Any, who: dict, status: str = "result_delivered") -> str:
    """A submitted case the handling side has finished (moved there directly), its forwarding
    to the province done."""
    case = submitted(client, who)
    session = db.session()
    session.get(Application, case["id"]).status = status
    session.execute(
        update(ForwardingOutbox)
        .where(ForwardingOutbox.application_id == case["id"])
        .values(state="delivered")
    )
    session.commit()
    return case["id"]


def rows(model: type, account_id: str) -> list:
    session = db.session()
    session.rollback()
    return list(session.scalars(select(model).where(model.account_id == account_id)))


def test_closure_erases_the_person_and_keeps_finished_cases(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    officer: dict,  # noqa: F811
    tokens_for: Any,  # noqa: F811
    bank: dict,  # noqa: F811
    services: Any,
) -> None:
    zhang = verified(app, 0, phone=PHONE)
    li = verified(app, 1)
    li_case = submitted(client, li)
    kept = finished(client, zhang, status="completed")
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    assert upload(client, zhang, draft["id"], "id_card", jpeg()).status_code == 201
    session = db.session()
    draft_file = session.scalar(
        select(ApplicationFile)
        .join(ApplicationMaterial, ApplicationMaterial.file_id == ApplicationFile.id)
        .where(ApplicationMaterial.application_id == draft["id"])
    )
    assert draft_file is not None and services.applications.storage.exists(draft_file.storage_key)
    device = {"provider": "jpush", "token": "jpushtoken0001", "platform": "android"}
    assert client.post("/v1/devices", json=device, headers=zhang["headers"]).status_code == 201
    prefs = client.put(
        "/v1/me/notification-preferences", json={"quiet_hours": False}, headers=zhang["headers"]
    )
    assert prefs.status_code == 200
    _, app_tokens = tokens_for(bank, citizen=zhang)
    app_headers = {"Authorization": f"Bearer {app_tokens['access_token']}"}
    assert client.get("/v1/me/basic-profile", headers=app_headers).status_code == 200

    before = client.get(URL, headers=zhang["headers"]).get_json()
    assert before["can_close"] is True and before["blockers"] == [] and before["drafts"] == 1

    resp = close(client, zhang)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["closed_at"] and resp.get_json()["drafts_deleted"] == 1

    # Every token ends: the citizen's own (access and refresh) and the app's.
    gone = client.get("/v1/me", headers=zhang["headers"])
    assert gone.status_code == 401 and gone.get_json()["error"]["code"] == "auth.session_revoked"
    refresh = client.post("/v1/auth/refresh", json={"refresh_token": zhang["refresh_token"]})
    assert refresh.status_code == 401
    assert client.get("/v1/me/basic-profile", headers=app_headers).status_code == 401
    assert "refresh_token" in app_tokens
    basic = base64.b64encode(f"{bank['id']}:{bank['secret']}".encode()).decode()
    app_refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": app_tokens["refresh_token"]},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert app_refresh.status_code == 400 and app_refresh.get_json()["error"] == "invalid_grant"

    # The same phone makes a new, empty account; the ID number can prove it again.
    again = make_citizen(app, phone=PHONE)
    assert again["account_id"] != zhang["account_id"]
    me = client.get("/v1/me", headers=again["headers"]).get_json()
    assert me["identity_level"] == "L1"
    assert client.get("/v1/applications", headers=again["headers"]).get_json()["items"] == []
    assert client.get("/v1/devices", headers=again["headers"]).get_json() == []
    assert client.get("/v1/me/notification-preferences", headers=again["headers"]).get_json()["quiet_hours"]
    hall.record_in_person(
        db.session(), deps=services.identity, operator_id="op-test", account_id=again["account_id"],
        name=DEMO_PEOPLE[0][0], id_number=DEMO_PEOPLE[0][1], hall="天河区政务服务中心", request_id=None,
    )  # fmt: skip
    assert client.get("/v1/identity", headers=again["headers"]).get_json()["level"] == "L3"

    # The finished case stays a government record the handling side still moves.
    assert stage(client, officer, kept, "result_delivered").status_code == 200
    fanout.process_notices(db.session(), services.notifications.settings)  # the notifier's turn
    session = db.session()
    session.rollback()
    assert session.get(Application, kept).account_id == zhang["account_id"]
    assert session.get(Application, draft["id"]) is None
    assert session.get(ApplicationFile, draft_file.id) is None
    assert not services.applications.storage.exists(draft_file.storage_key)
    account = session.get(Account, zhang["account_id"])
    assert account.status == "deleted" and account.closed_at is not None
    for model in closure.erased_models():
        assert rows(model, zhang["account_id"]) == [], model.__name__
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.closed"))
    assert event.target_id == zhang["account_id"]
    assert PHONE not in str(event.details) and DEMO_PEOPLE[0][1] not in str(event.details)

    # Another citizen is untouched.
    assert client.get(f"/v1/applications/{li_case['id']}", headers=li["headers"]).status_code == 200
    assert client.get("/v1/identity", headers=li["headers"]).get_json()["level"] == "L3"


def test_the_same_wechat_user_afterwards_gets_a_new_empty_account(
    app: Any,
    client: Any,
    wx: Any,  # noqa: F811
) -> None:
    first = mini_citizen(client, wx)
    assert close(client, first).status_code == 200
    login = client.post("/v1/auth/miniprogram/login", json={"code": wx.login_code(first["openid"])})
    assert login.status_code == 200, login.get_json()
    body = login.get_json()
    assert body["new_account"] is True and body["account_id"] != first["account_id"]
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/v1/applications", headers=headers).get_json()["items"] == []
    assert client.get("/v1/me", headers=headers).get_json()["id"] == body["account_id"]


def test_every_blocker_is_listed_and_nothing_changes(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    officer: dict,  # noqa: F811
) -> None:
    zhang = verified(app, 0)
    case = submitted(client, zhang)
    hall_id = make_hall(app)
    slot = slots(client, zhang, hall_id, next_working_day(app)).get_json()[0]
    booking = book(client, zhang, slot["id"])
    assert booking.status_code == 201, booking.get_json()
    complaint = client.post(
        "/v1/complaints", json={"kind": "complaint", "category": "efficiency", "text": "窗口排队太久"},
        headers=zhang["headers"],
    ).get_json()  # fmt: skip
    rated = finished(client, zhang, status="completed")
    made = client.post(
        f"/v1/applications/{rated}/evaluation", json={"level": "非常不满意", "reason": "跑了三次"},
        headers=zhang["headers"],
    )  # fmt: skip
    assert made.status_code in (200, 201), made.get_json()
    task_id = client.get("/admin/v1/rectifications?status=open", headers=officer).get_json()["items"][0]["id"]
    client.post(f"/admin/v1/rectifications/{task_id}/response", json={"response": "已改进"}, headers=officer)
    appeal = client.post(
        f"/v1/applications/{rated}/evaluation/decision", json={"accept": False, "reason": "并未解决"},
        headers=zhang["headers"],
    )  # fmt: skip
    assert appeal.get_json()["status"] == "appealed"

    resp = close(client, zhang)
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "account.closure_blocked" and "注销" in error["message"]
    found = {(b["type"], b["id"]) for b in error["details"]["blockers"]}
    assert found == {
        ("application", case["id"]),
        ("appointment", booking.get_json()["id"]),
        ("complaint", complaint["id"]),
        ("rectification_appeal", task_id),
    }
    english = close(client, zhang, **{"Accept-Language": "en"}).get_json()["error"]
    assert english["code"] == "account.closure_blocked" and "close" in english["message"].lower()
    ahead = client.get(URL, headers=zhang["headers"]).get_json()
    assert ahead["can_close"] is False and len(ahead["blockers"]) == 4
    appeal_ref = next(b["ref"] for b in ahead["blockers"] if b["type"] == "rectification_appeal")
    assert appeal_ref == db.session().get(Application, rated).case_number  # the UI finds the case by it
    assert {b["label"] for b in ahead["blockers"]} >= {"办件尚未办结", "有尚未到来的预约"}
    in_english = client.get(URL, headers=zhang["headers"] | {"Accept-Language": "en"}).get_json()["blockers"]
    assert "A hall booking is still to come" in {b["label"] for b in in_english}
    refused_en = close(client, zhang, **{"Accept-Language": "en"}).get_json()["error"]["details"]["blockers"]
    assert "A case is not finished yet" in {b["label"] for b in refused_en}
    # Nothing was written: the account, its token and its cases go on.
    assert client.get("/v1/me", headers=zhang["headers"]).status_code == 200
    assert client.get(f"/v1/applications/{case['id']}", headers=zhang["headers"]).status_code == 200
    assert db.session().get(Account, zhang["account_id"]).closed_at is None


@pytest.mark.parametrize("status", ["completed", "result_delivered", "withdrawn", "not_accepted"])
def test_finished_cases_do_not_block(app: Any, client: Any, seeded: Any, status: str) -> None:  # noqa: F811
    zhang = verified(app, 0)
    finished(client, zhang, status=status)
    assert client.get(URL, headers=zhang["headers"]).get_json()["can_close"] is True
    assert close(client, zhang).status_code == 200


def test_a_session_older_than_the_window_must_log_in_again(app: Any, client: Any, clock: Any) -> None:
    who = make_citizen(app)
    clock.advance(closure.FRESH_LOGIN.total_seconds() + 1)
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": who["refresh_token"]}).get_json()
    headers = {"Authorization": f"Bearer {refreshed['access_token']}"}  # a refresh is not a login
    resp = close(client, {"headers": headers})
    assert resp.status_code == 403
    error = resp.get_json()["error"]
    assert error["code"] == "account.closure_login_required" and "重新登录" in error["message"]
    assert error["details"]["max_age_seconds"] == int(closure.FRESH_LOGIN.total_seconds())
    preview = client.get(URL, headers=headers).get_json()
    # Nothing blocks, but a closure asked now would be refused: can_close says so.
    assert preview["fresh_login_required"] is True and preview["blockers"] == []
    assert preview["can_close"] is False
    assert client.get("/v1/me", headers=headers).status_code == 200  # nothing happened
    fresh = make_citizen(app)  # a new login (another account here; the rule is the session's age)
    assert close(client, fresh).status_code == 200


def test_a_retry_finds_the_session_ended_and_closes_nothing_twice(app: Any, client: Any) -> None:
    who = make_citizen(app)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert close(client, who, **key).status_code == 200
    retry = close(client, who, **key)
    assert retry.status_code == 401 and retry.get_json()["error"]["code"] == "auth.session_revoked"
    events = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "account.closed")).all()
    assert len(events) == 1


def test_bad_requests_are_refused_before_anything_happens(app: Any, client: Any) -> None:
    who = make_citizen(app)
    no_key = client.post(URL, json={"confirm": True}, headers=who["headers"])
    assert no_key.status_code == 428
    unconfirmed = close(client, who, body={"confirm": False})
    assert unconfirmed.status_code == 422 and "confirm" in unconfirmed.get_json()["error"]["fields"]
    assert close(client, who, body={}).status_code == 422
    for loose in ("yes", "true", 1, "1", "on"):  # only JSON true confirms
        assert close(client, who, body={"confirm": loose}).status_code == 422, loose
    assert client.get("/v1/me", headers=who["headers"]).status_code == 200


def test_every_per_account_table_is_either_erased_or_kept_for_a_reason(app: Any) -> None:
    erased = {m.__table__.name for m in closure.erased_models()}
    with_owner = {t.name for t in Base.metadata.sorted_tables if "account_id" in t.columns}
    assert with_owner - erased - set(closure.KEPT) == set()
    assert erased & set(closure.KEPT) == set()


def test_what_a_merge_left_on_the_older_account_goes_with_the_closure(app: Any, client: Any) -> None:
    """Wallet certificates do not follow the person on a merge: they stay on the account merged
    away, and closing the surviving account erases them too."""
    older, survivor = make_citizen(app), make_citizen(app)
    session = db.session()
    session.add(
        WalletCertificate(
            account_id=older["account_id"], identifier="1.2.156.3005.2.test.0001", type_code="t" * 21,
            type_name="居民身份证", issuer="公安厅", holder_name_enc="x", number_enc="x",
            number_masked="4401**********0011", own=True, state="01", synced_at=clock_mod.now(),
        )
    )  # fmt: skip
    source, target = session.get(Account, older["account_id"]), session.get(Account, survivor["account_id"])
    # Two phones would clash: the older account keeps none (as a WeChat account merged by phone).
    session.execute(delete(ChannelIdentity).where(ChannelIdentity.account_id == older["account_id"]))
    session.expire(source)
    merge.fold_into(session, source=source, target=target, actor_id="test", reason="test")
    session.commit()
    assert close(client, survivor).status_code == 200
    assert rows(WalletCertificate, older["account_id"]) == []


def test_the_sms_jobs_of_the_erased_codes_keep_no_phone_or_code(app: Any, client: Any, clock: Any) -> None:
    phone = "13912340077"
    who = make_citizen(app, phone=phone)
    sent = []
    for _ in range(2):
        answer = client.post("/v1/auth/sms/send", json={"phone": phone})
        assert answer.status_code == 202, answer.get_json()
        sent.append(db.session().get(SmsChallenge, answer.get_json()["challenge_id"]).outbox_job_id)
        clock.advance(120)
    session = db.session()
    dead, waiting = (session.get(OutboxJob, job_id) for job_id in sent)
    dead.status = "dead"  # the SMS provider refused it: the payload stays for an operator
    session.commit()
    assert "data" in dead.payload and "data" in waiting.payload

    assert close(client, who).status_code == 200
    session.rollback()
    for job_id in sent:
        job = session.get(OutboxJob, job_id)
        assert "data" not in job.payload and job.payload["challenge_id"]
        assert job.status == "dead"  # the one not yet sent never goes: its code is gone
        # Marked erased as the retention sweep marks them: an operator's replay is refused.
        assert "_scrub" not in job.payload and job.payload["_scrubbed_at"]
    ops = admin_headers(client, make_operator(app, username="olga", roles=("ops",)))
    for job_id in sent:
        refused = client.post(f"/admin/v1/jobs/{job_id}/replay", headers=ops)
        assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "jobs.data_erased"


def test_a_visit_checked_in_today_does_not_block(app: Any, client: Any, seeded: Any) -> None:  # noqa: F811
    zhang = verified(app, 0)
    slot = slots(client, zhang, make_hall(app), next_working_day(app)).get_json()[0]
    booking = book(client, zhang, slot["id"])
    assert booking.status_code == 201, booking.get_json()
    blocked = close(client, zhang)
    assert (
        blocked.status_code == 409
        and blocked.get_json()["error"]["details"]["blockers"][0]["type"] == "appointment"
    )
    session = db.session()
    visit = session.get(Appointment, booking.get_json()["id"])
    visit.status, visit.day = "checked_in", clock_mod.local_date()  # the hall checked them in today
    session.commit()
    assert close(client, zhang).status_code == 200
