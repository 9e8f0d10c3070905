"""Delivery to the province: receipts, dedupe, retries, dead letters, breaker, leases, order."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from sqlalchemy import select

from domain.applications.models import Application, ApplicationEvent, ApplicationNotice, ForwardingOutbox
from domain.forwarding.delivery import Forwarder
from integrations.province.client import ProvinceClient
from tests.forwarding.conftest import forward, fresh, get, key, submitted


def _row(app_id: str, kind: str = "submit") -> ForwardingOutbox:
    return fresh().scalar(
        select(ForwardingOutbox).where(
            ForwardingOutbox.application_id == app_id, ForwardingOutbox.kind == kind
        )
    )


def _forwarder(services, **profile_changes) -> Forwarder:
    deps = services.forwarding
    profile = dataclasses.replace(deps.profile(), **profile_changes)
    return Forwarder(
        profile=profile, client=ProvinceClient(profile), encryptor=services.encryptor, redis=deps.redis
    )


def test_the_citizen_sees_waiting_then_received_with_the_receipt(client, zhang, services, province):
    case = submitted(client, zhang)
    before = get(client, zhang, case["id"]).get_json()
    assert before["province"] == {"state": "waiting", "label": "已提交，等待省平台接收", "receipt_no": None}

    assert forward(services) == ["delivered"]

    after = get(client, zhang, case["id"]).get_json()
    row = _row(case["id"])
    assert after["status"] == "received" and after["status_label"] == "省平台已接收"
    assert after["province"]["state"] == "received" and after["province"]["receipt_no"] == row.receipt_no
    assert row.state == "delivered" and row.attempts == 1
    sim_case = province.case(case["case_number"])
    assert sim_case["versions"] and province.stats()["received"] == 1
    # Each material with the name the province's officers read (材料名称), as the catalog gives it.
    assert sorted((m["material_id"], m["kind"], m["name"]) for m in sim_case["materials"]) == [
        ("id_card", "upload", "居民身份证"), ("insurance", "upload", "参保登记信息"),
    ]  # fmt: skip
    # The province decrypted the applicant: it has the real identity, we only show it masked.
    assert sim_case["applicant"]["decrypted"] is True
    assert zhang["id_number"] not in str(sim_case)
    en = client.get(f"/v1/applications/{case['id']}", headers=zhang["headers"] | {"Accept-Language": "en"})
    assert en.get_json()["province"]["label"] == "Received by the provincial platform"
    notices = (
        fresh().scalars(select(ApplicationNotice).where(ApplicationNotice.application_id == case["id"])).all()
    )
    assert [n.event_type for n in notices] == ["case_received"] and notices[0].params[
        "receipt_no"
    ] == row.receipt_no


def test_a_province_profile_of_another_name_forwards_submissions_and_withdrawals(
    client, zhang, services, province, monkeypatch
):
    """A province deploys its own profile (PROVINCE_PROFILE=<its file>, named after it): the
    forwarder claims only rows of that profile, so every row a citizen's action writes carries it."""
    own = dataclasses.replace(services.forwarding.profile(), name="zhejiang")
    monkeypatch.setattr(services.forwarding, "profile", lambda: own)
    case = submitted(client, zhang)
    assert _row(case["id"]).profile == "zhejiang"
    assert forward(services) == ["delivered"]
    assert get(client, zhang, case["id"]).get_json()["status"] == "received"
    withdrawn = client.post(f"/v1/applications/{case['id']}/withdraw", json={"reason": "不办了"},
                            headers=zhang["headers"] | key())  # fmt: skip
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert _row(case["id"], "withdraw").profile == "zhejiang"
    assert forward(services) == ["delivered"]
    assert _row(case["id"], "withdraw").state == "delivered"


def test_a_lost_answer_is_sent_again_and_the_province_dedupes(client, zhang, services, province, db_session):
    case = submitted(client, zhang)
    forward(services)
    first = _row(case["id"]).receipt_no
    session = fresh()
    row = session.get(ForwardingOutbox, _row(case["id"]).id)
    row.state, row.receipt_no = "pending", None  # as if the answer never reached us
    session.commit()

    assert forward(services) == ["delivered"]

    stats = province.stats()
    assert stats["received"] == 1 and stats["duplicates"] == 1
    assert _row(case["id"]).receipt_no == first
    received = (
        fresh()
        .scalars(
            select(ApplicationEvent).where(
                ApplicationEvent.application_id == case["id"], ApplicationEvent.to_status == "received"
            )
        )
        .all()
    )
    assert len(received) == 1


def test_503_then_recovery_retries_with_backoff(client, zhang, services, province, clock):
    case = submitted(client, zhang)
    province.faults(error_rate=1.0)
    assert forward(services) == ["retrying"]
    row = _row(case["id"])
    assert row.state == "retrying" and row.attempts == 1 and "503" in row.last_error
    assert row.next_attempt_at > clock.now()
    assert forward(services) == []  # not due yet

    province.faults(error_rate=0.0)
    clock.advance(400)
    assert forward(services) == ["delivered"]
    assert _row(case["id"]).attempts == 2
    assert get(client, zhang, case["id"]).get_json()["status"] == "received"


def test_429_waits_at_least_retry_after(client, zhang, services, province, clock):
    case = submitted(client, zhang)
    province.faults(rate_limit=0.001)  # every call over the limit
    outcomes = forward(services)
    assert outcomes == ["retrying"]
    row = _row(case["id"])
    assert "429" in row.last_error and (row.next_attempt_at - clock.now()).total_seconds() >= 0.99


def _listed(client, who, app_id):
    """The case's entry in the citizen's list (the first page, which the phone opens)."""
    items = client.get("/v1/applications", headers=who["headers"]).get_json()["items"]
    return next(item for item in items if item["id"] == app_id)


def test_a_validation_refusal_is_a_dead_letter_an_operator_corrects_and_replays(
    client, zhang, services, province, ops, clock
):
    case = submitted(client, zhang)
    assert get(client, zhang, case["id"]).get_json()["province"]["state"] == "waiting"  # now cached
    assert _listed(client, zhang, case["id"])["province"]["state"] == "waiting"  # the list too
    session = fresh()
    row = session.get(ForwardingOutbox, _row(case["id"]).id)
    row.overrides = {"channel": 12}  # what a broken field mapping would send
    session.commit()

    assert forward(services) == ["dead"]
    # The citizen is told the case is delayed and being handled, not left "waiting" for ever.
    shown = get(client, zhang, case["id"]).get_json()
    assert shown["status"] == "submitted" and shown["province"]["state"] == "delayed"
    assert shown["province"]["label"] == "省平台暂未接收，工作人员正在处理，无需重新提交"
    assert _listed(client, zhang, case["id"])["province"] == shown["province"]  # the list says so too
    dead = client.get("/admin/v1/forwarding/rows?state=dead", headers=ops).get_json()["items"]
    assert [d["id"] for d in dead] == [row.id] and "400" in dead[0]["last_error"]
    stats = client.get("/admin/v1/forwarding/stats", headers=ops).get_json()
    assert stats["dead_letters"] == 1 and stats["queue_depth"] == 0

    refused = client.patch(
        f"/admin/v1/forwarding/rows/{row.id}",
        json={"overrides": {"applicant": {"name": "x"}}},
        headers=ops | key(),
    )
    assert refused.status_code == 422  # an operator may not rewrite who applied
    fixed = client.patch(f"/admin/v1/forwarding/rows/{row.id}", json={"overrides": None}, headers=ops | key())
    assert fixed.status_code == 200 and fixed.get_json()["overrides"] is None
    replayed = client.post(f"/admin/v1/forwarding/rows/{row.id}/replay", headers=ops | key())
    assert replayed.status_code == 200 and replayed.get_json()["state"] == "pending"
    assert get(client, zhang, case["id"]).get_json()["province"]["state"] == "waiting"
    assert _listed(client, zhang, case["id"])["province"]["state"] == "waiting"
    again = client.post(f"/admin/v1/forwarding/rows/{row.id}/replay", headers=ops | key())
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "forwarding.not_dead_letter"

    assert forward(services) == ["delivered"]
    assert province.stats()["received"] == 1


def test_the_breaker_stops_calls_to_a_dead_province_and_lets_a_probe_through(
    client, zhang, services, province, clock, ops
):
    fw = _forwarder(services, breaker_threshold=2, breaker_cooldown=0.5)
    cases = [submitted(client, zhang) for _ in range(4)]
    province.faults(outage=True)
    forward(services, forwarder=fw)  # two failures open the breaker; the rest are postponed
    calls = province.stats()["requests"]
    assert calls == 2
    rows = [_row(c["id"]) for c in cases]
    assert sorted(r.attempts for r in rows) == [0, 0, 1, 1]  # postponed rows keep their attempts
    # Operators' alerting sees the province cut off, in the stats and in the Prometheus text.
    assert client.get("/admin/v1/forwarding/stats", headers=ops).get_json()["circuit"]["state"] == "open"
    metrics = client.get("/admin/v1/forwarding/metrics", headers=ops).get_data(as_text=True)
    assert 'yiwang_forwarding_circuit{state="open"} 1' in metrics
    assert 'yiwang_forwarding_circuit{state="closed"} 0' in metrics

    province.faults(outage=False)
    import time

    time.sleep(0.6)  # the breaker's cooldown is real time (shared in Redis)
    clock.advance(600)
    forward(services, forwarder=fw, rounds=2)
    assert province.stats()["received"] == 4
    assert all(_row(c["id"]).state == "delivered" for c in cases)


def test_a_killed_workers_row_comes_back_when_its_lease_ends(client, zhang, services, province, clock):
    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()
    [(row_id, attempt)] = fw.claim(fresh(), 10)  # ...and the worker dies here
    assert attempt == 1 and fw.claim(fresh(), 10) == []
    clock.advance(fw.lease + 1)
    [(again, attempt2)] = fw.claim(fresh(), 10)
    assert again == row_id and attempt2 == 2
    assert fw.deliver(fresh(), row_id, attempt) == "superseded"  # the dead run may not finish it
    assert fw.deliver(fresh(), row_id, attempt2) == "delivered"
    assert province.stats()["received"] == 1 and _row(case["id"]).state == "delivered"


def test_a_withdrawal_stops_a_submission_waiting_to_be_sent_again(client, zhang, services, province, clock):
    """The first send failed (nothing reached the province): the retry is cancelled, and the
    withdrawal the province answers with "no such case" settles it."""
    case = submitted(client, zhang)
    province.faults(error_rate=1.0)
    assert forward(services) == ["retrying"]
    province.faults(error_rate=0.0)
    resp = client.post(
        f"/v1/applications/{case['id']}/withdraw", json={"reason": "填错了"}, headers=zhang["headers"] | key()
    )
    assert resp.status_code == 200
    clock.advance(400)  # the retry would be due
    assert forward(services) == ["delivered"]  # the withdrawal, alone
    assert _row(case["id"]).state == "cancelled" and _row(case["id"], "withdraw").receipt["no_such_case"]
    assert province.stats()["received"] == 0
    assert get(client, zhang, case["id"]).get_json()["status"] == "withdrawn"


def test_a_withdrawal_reaches_a_province_that_got_the_submission_but_not_its_answer(
    client, zhang, services, province, clock
):
    """The province recorded the submission and its answer came too late: the withdrawal, not a
    repeat of the data, is what it hears next."""
    case = submitted(client, zhang)
    fw = _forwarder(services, timeout=0.3)
    province.faults(timeout_rate=1.0, timeout_seconds=1.0, timeout_record="before")
    assert forward(services, forwarder=fw) == ["retrying"]
    province.faults(timeout_rate=0.0)
    resp = client.post(
        f"/v1/applications/{case['id']}/withdraw", json={"reason": "填错了"}, headers=zhang["headers"] | key()
    )
    assert resp.status_code == 200
    clock.advance(400)
    assert forward(services, forwarder=fw) == ["delivered"]
    assert _row(case["id"]).state == "cancelled" and _row(case["id"], "withdraw").receipt_no
    assert province.case(case["case_number"])["stage"] == "withdrawn"
    assert province.stats()["duplicates"] == 0  # the data was not sent twice


def test_a_refusal_quoting_personal_numbers_is_stored_and_audited_masked(
    client, zhang, services, monkeypatch
):
    """The province's message may quote what it refused; operators see the row and the audit
    trail keeps the reason, so phone and ID numbers in it are masked as in the logs."""
    from core.audit import AuditEvent
    from integrations.province.client import ProvinceError

    case = submitted(client, zhang)
    fw = services.forwarding.forwarder()

    def refuse(body):
        raise ProvinceError("身份证号 110101199003078515、手机 13800138000 校验不通过", retryable=False,
                            status=400, code="E4001")  # fmt: skip

    monkeypatch.setattr(fw.client, "intake", refuse)  # the client is shared: undone after the test
    assert forward(services, forwarder=fw) == ["dead"]
    row = _row(case["id"])
    audited = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "forwarding.dead_letter")).all()
    for text in (row.last_error, *(str(a.details) for a in audited)):
        assert "110101199003078515" not in text and "13800138000" not in text, text
    assert "E4001" in row.last_error and "校验不通过" in row.last_error
    assert "110***********8515" in row.last_error and "138****8000" in row.last_error  # the usual shapes


@pytest.mark.parametrize("retryable", [False, True])
def test_a_refusal_quoting_the_applicants_name_and_address_keeps_them_masked(
    client, zhang, services, monkeypatch, caplog, retryable
):
    """No pattern finds a name or an address in the province's text: what the body sent is
    masked where it is quoted, in the row operators see, the audit trail and the logs."""
    from core.audit import AuditEvent
    from integrations.province.client import ProvinceError
    from tests.api.v1.applications.conftest import patch, submit
    from tests.forwarding.conftest import ready

    place = "广州市天河区体育西路191号"
    draft = patch(client, zhang, ready(client, zhang), {"delivery": {"method": "post", "address": place}})
    assert draft.status_code == 200, draft.get_json()
    case = submit(client, zhang, draft.get_json()).get_json()
    fw = services.forwarding.forwarder()
    quoted: dict[str, str] = {}

    def refuse(body):
        quoted["name"], quoted["place"] = body["applicant"]["name"], body["form"]["delivery.address"]
        raise ProvinceError(f"申请人{quoted['name']}的地址“{quoted['place']}”与户籍不符，字段 dz 不通过",
                            retryable=retryable, status=503 if retryable else 400, code="E4002")  # fmt: skip

    monkeypatch.setattr(fw.client, "intake", refuse)
    caplog.set_level(logging.INFO)
    assert forward(services, forwarder=fw) == ["retrying" if retryable else "dead"]
    row = _row(case["id"])
    audited = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "forwarding.dead_letter")).all()
    logged = [str(vars(r)) for r in caplog.records]  # the JSON log lines carry the extras too
    assert any("forwarding.dead_letter" in line for line in logged) is not retryable
    texts = [row.last_error, *(str(a.details) for a in audited), *logged]
    for text in texts:
        assert quoted["name"] not in text and quoted["place"] not in text, text
    # What the operator needs stays: the code, the field, the masked shape of what was quoted.
    assert "字段 dz 不通过" in row.last_error and ("E4002" in row.last_error or retryable)
    assert quoted["place"] == place and "申请人张*的地址“广************号”" in row.last_error
    assert bool(audited) is not retryable


def test_what_a_refusal_may_quote_covers_list_items_and_e_mail_addresses():
    from core.masking import redact_values
    from domain.forwarding.delivery import _quoted

    body = {
        "applicant": {"name": "John Smith"},
        "form": {
            "delivery.method": "post",
            "contact.email": "zhang.san@example.cn",
            "family.members": ["李四", "王小五", 3],
            "employer": "广州市某某有限公司",
        },
    }
    text = redact_values(
        "申请人 John Smith（zhang.san@example.cn）家庭成员王小五不符，delivery.method=post 不通过",
        _quoted(body),
    )
    assert "John Smith" not in text and "zhang.san@example.cn" not in text and "王小五" not in text
    assert "J********h" in text and "王*五" in text
    assert "delivery.method=post" in text  # what the operator needs to find the field stays


def test_what_a_refusal_may_quote_covers_objects_inside_lists():
    from core.masking import redact_values
    from domain.forwarding.delivery import _quoted

    body = {
        "applicant": {"name": "张三"},
        "form": {
            "family.members": [
                {"name": "李小四", "relation": "子女", "work": {"employer": "深圳市某某科技有限公司"}},
                {"name": "王五", "email": "wang.wu@example.cn", "age": 9},
            ],
        },
    }
    quoted = _quoted(body)
    text = redact_values(
        "成员李小四（wang.wu@example.cn）与王五的单位“某某科技有限公司”核验不通过，字段 jtcy", quoted
    )
    for value in ("李小四", "王五", "wang.wu@example.cn", "某某科技有限公司"):
        assert value not in text, text
    assert "李*四" in text and "字段 jtcy" in text
    deep = _quoted({"form": {"f": [[[[[[["李小四"]]]]]]], "g": {"a": {"b": [{"c": "王五"}]}}}})
    assert sorted(deep) == ["李小四", "王五"]


def test_a_dead_letter_tells_the_citizen_once_not_to_submit_again(
    app, client, zhang, services, province, ops
):
    from tests.notifications.conftest import run_notifier

    case = submitted(client, zhang)
    row_id = _row(case["id"]).id
    session = fresh()
    session.get(ForwardingOutbox, row_id).overrides = {"channel": 12}  # refused by the province
    session.commit()
    assert forward(services) == ["dead"]
    run_notifier(app)

    def delayed() -> list[dict]:
        items = client.get("/v1/notifications", headers=zhang["headers"]).get_json()["items"]
        return [n for n in items if n["application_id"] == case["id"] and n["title"] == "申请暂未送达"]

    [note] = delayed()
    assert case["case_number"] in note["body"] and "无需重新提交" in note["body"]

    # Replayed and refused again: the citizen already knows; nothing new to tell.
    assert client.post(f"/admin/v1/forwarding/rows/{row_id}/replay", headers=ops | key()).status_code == 200
    assert forward(services) == ["dead"]
    run_notifier(app)
    assert len(delayed()) == 1


@pytest.mark.parametrize("name", ["浙江", "Zhejiang", "a" * 33, "zj/prod"])
def test_a_profile_name_that_cannot_be_stored_or_routed_is_refused_at_start_up(app, tmp_path, name):
    """The name goes with every outbox row, event and nonce (32 characters) and into callback
    paths: a profile named otherwise stops the service at start-up, not at the first case."""
    import json
    from pathlib import Path

    from integrations.province.profile import ProfileError, load_profile

    raw = json.loads(
        (Path(__file__).resolve().parents[2] / "config/province/reference.json").read_text("utf-8")
    )
    path = tmp_path / "own.json"
    path.write_text(json.dumps(raw | {"name": name}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ProfileError, match="profile name"):
        load_profile(dict(app.config) | {"PROVINCE_PROFILE": str(path)})
    path.write_text(json.dumps(raw | {"name": "zhejiang-prod_2"}), encoding="utf-8")
    assert load_profile(dict(app.config) | {"PROVINCE_PROFILE": str(path)}).name == "zhejiang-prod_2"


def test_the_province_hears_the_channel_the_case_was_submitted_on(app, client, zhang, services, monkeypatch):
    """Begun in the app, finished in the mini-program: the 申报渠道 is the mini-program's."""
    from tests.api.v1.applications.conftest import relogin, submit
    from tests.forwarding.conftest import ready

    draft = ready(client, zhang)  # zhang's session is the app's
    mini = relogin(app, zhang, channel="miniprogram")
    done = submit(client, mini, draft)
    assert done.status_code == 200, done.get_json()
    fw = services.forwarding.forwarder()
    sent, real = [], fw.client.intake
    monkeypatch.setattr(fw.client, "intake", lambda body: sent.append(body) or real(body))
    assert forward(services, forwarder=fw) == ["delivered"]
    assert [b["channel"] for b in sent] == ["3"]  # config/province/reference.json: miniprogram
    assert fresh().get(Application, done.get_json()["id"]).created_channel == "app"
