"""The two-element check (L2), one identity per account, limits, full values and in-person checks."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from domain.accounts.models import DELETED, Account
from domain.identity.models import IdentityVerification
from tests.api.v1.identity.conftest import LI, ZHANG, bearer, complete, mini_citizen, ref_of, refreshed, start
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator


def test_a_matching_id_check_gives_l2_at_once(client, app_citizen, sims):
    # Read first (the view is cached): the change must show at once, not after the cache expires.
    before = client.get("/v1/identity", headers=app_citizen["headers"]).get_json()
    assert before["level"] == "L1" and before["name"] is None
    resp = start(client, app_citizen, "id_check", consent=None)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["verification"]["status"] == "passed" and body["identity_level"] == "L2"
    me = client.get("/v1/identity", headers=bearer(body["tokens"])).get_json()
    assert me["level"] == "L2" and me["method"] == "id_check" and me["live_checked_at"] is None
    again = start(client, {"headers": bearer(body["tokens"])}, "id_check", consent=None)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "identity.already_verified"


@pytest.mark.parametrize(
    ("person", "reason"),
    [({"name": "张四", "id_number": ZHANG["id_number"]}, "identity_mismatch"),
     ({"name": "赵六", "id_number": "110101198001010010"}, "no_record")],
)  # fmt: skip
def test_a_failed_id_check_says_why(client, app_citizen, sims, person, reason):
    body = start(client, app_citizen, "id_check", person=person, consent=None).get_json()
    assert body["verification"]["status"] == "failed" and body["verification"]["reason"] == reason
    assert body["identity_level"] == "L1"


@pytest.mark.parametrize(
    "typed", ["买买提.艾力", "买买提 • 艾力", "买买提\u3000・\u3000艾力", "买买提．艾力"]
)
def test_a_name_typed_with_spaces_or_another_dot_is_verified_as_the_registered_name(
    client, app_citizen, sims, typed
):
    resp = start(client, app_citizen, "id_check", person={"name": typed, "id_number": "650102197806153219"},
                 consent=None)  # fmt: skip
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["verification"]["status"] == "passed" and body["identity_level"] == "L2"
    me = client.get("/v1/identity/full?purpose=view", headers=bearer(body["tokens"])).get_json()
    assert me["name"] == "买买提·艾力"


def test_inner_spaces_in_a_han_name_are_dropped(client, app_citizen, sims):
    resp = start(client, app_citizen, "id_check", person=ZHANG | {"name": "张\u3000三"}, consent=None)
    assert resp.status_code == 201 and resp.get_json()["verification"]["status"] == "passed"


def test_a_mistyped_id_number_and_a_latin_name_say_what_to_fix(client, app_citizen, sims):
    """An elderly citizen who mistypes a digit reads what is wrong in Chinese (English on request),
    each field on its own; a client may map the codes in details instead."""
    person = {"name": "Zhang San", "id_number": "110101199003078514"}
    error = start(client, app_citizen, "id_check", person=person).get_json()["error"]
    assert error["fields"] == {
        "name": ["姓名只能由汉字组成，少数民族姓名各部分之间用间隔号“·”连接"],
        "id_number": ["身份证号码末位校验码不符，可能有数字输错"],
    }
    assert error["details"] == {
        "problems": {"name": "identity.name.characters", "id_number": "identity.id_number.checksum"}
    }
    english = start(client, app_citizen, "id_check", person=person, **{"Accept-Language": "en"})
    assert english.get_json()["error"]["fields"]["id_number"] == [
        "the last character does not match the others: a digit may be mistyped"
    ]


@pytest.mark.parametrize(
    ("person", "field"),
    [({"name": "张三", "id_number": "110101199003078514"}, "id_number"),
     ({"name": "张三", "id_number": "110101209903078515"}, "id_number"),
     ({"name": "Zhang San", "id_number": ZHANG["id_number"]}, "name"),
     ({"name": "张 San", "id_number": ZHANG["id_number"]}, "name"),
     ({"name": "张 三3", "id_number": ZHANG["id_number"]}, "name"),
     ({"name": "张", "id_number": ZHANG["id_number"]}, "name")],
)  # fmt: skip
def test_bad_input_is_refused_before_any_paid_call(client, app_citizen, sims, person, field, db_session):
    before = {m: s.calls() for m, s in sims.items() if m != "wechat_face"}
    for method in ("id_check", "tencent_faceid", "alipay_face"):
        resp = start(client, app_citizen, method, person=person)
        assert resp.status_code == 422, resp.get_json()
        error = resp.get_json()["error"]
        assert error["code"] == "identity.invalid" and field in error["fields"]
    assert {m: sims[m].calls() for m in before} == before
    db_session.rollback()
    assert db_session.scalars(select(IdentityVerification)).all() == []


def test_the_same_person_on_two_accounts_ends_with_one_after_binding_the_phone(
    client, wx, app, sims, db_session
):
    phone = "13712340001"
    on_app = make_citizen(app, phone=phone)
    assert start(client, on_app, "id_check", consent=None).get_json()["identity_level"] == "L2"
    # Later the same person logs in through the mini-program (a WeChat-only account) and proves
    # their face there. A name and number typed elsewhere do not show that account is theirs:
    # the face takes the identity, and nothing merges on it.
    mini = mini_citizen(client, wx, phone=phone)
    body = start(client, mini, "wechat_face").get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    done = complete(client, mini, body["verification"]["id"])
    assert done.status_code == 200, done.get_json()
    result = done.get_json()
    assert result["identity_level"] == "L3" and not result.get("merged")
    # Binding the phone WeChat vouches for proves both accounts are one person's: they merge,
    # and the identity comes along.
    bound = client.post(
        "/v1/auth/miniprogram/phone",
        json={"code": wx.phone_code(mini["openid"])},
        headers=bearer(result["tokens"]),
    )
    assert bound.status_code == 200 and bound.get_json()["merged"] is True, bound.get_json()
    headers = bearer(bound.get_json()["tokens"])
    me = client.get("/v1/me", headers=headers).get_json()
    assert me["id"] == on_app["account_id"] and me["channels"] == {"wechat": True, "phone": True}
    assert client.get("/v1/identity", headers=headers).get_json()["level"] == "L3"
    db_session.rollback()
    closed = db_session.get(Account, mini["account_id"])
    assert closed.status == DELETED and closed.merged_into_id == on_app["account_id"]
    verification = db_session.get(IdentityVerification, body["verification"]["id"])
    assert verification.account_id == on_app["account_id"]


def test_two_accounts_with_different_phones_are_not_merged(client, app, app_citizen, sims):
    assert start(client, app_citizen, "id_check", consent=None).get_json()["identity_level"] == "L2"
    other = make_citizen(app)  # another phone number
    before = sims["id_check"].calls()
    resp = start(client, other, "id_check", consent=None)
    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["error"]["code"] == "identity.bound_to_other_account"
    assert sims["id_check"].calls() == before + 1  # refused once name and number matched


def test_an_id_check_does_not_tell_whether_someone_else_is_verified_here(client, app, app_citizen, sims):
    """With a wrong name, an ID number another account holds gets the same answer as one nobody
    holds (the provider's mismatch), and it costs the asker's daily quota like any check."""
    assert start(client, app_citizen, "id_check", consent=None).get_json()["identity_level"] == "L2"
    prober = make_citizen(app)
    held = start(client, prober, "id_check", person=ZHANG | {"name": "王五"}, consent=None)
    free = start(
        client, prober, "id_check", person={"name": "王五", "id_number": LI["id_number"]}, consent=None
    )
    assert held.status_code == free.status_code, (held.get_json(), free.get_json())
    seen = [
        (r.get_json()["verification"]["status"], r.get_json()["verification"]["reason"]) for r in (held, free)
    ]
    assert seen == [("failed", "identity_mismatch")] * 2
    # No face was compared: the message speaks of the name and the number only.
    assert held.get_json()["verification"]["reason_message"] == "姓名与身份证号码不一致，请核对后重试"


def test_id_checks_are_limited_per_account_per_day(client, app_citizen, sims, clock):
    wrong = {"name": "张四", "id_number": ZHANG["id_number"]}
    for _ in range(5):
        assert start(client, app_citizen, "id_check", person=wrong, consent=None).status_code == 201
    over = start(client, app_citizen, "id_check", person=wrong, consent=None)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    clock.advance(days=1, seconds=1)
    assert start(client, refreshed(client, app_citizen), "id_check", consent=None).status_code == 201


def test_face_checks_are_limited_per_account_per_day(client, app_citizen, sims, clock):
    for _ in range(3):
        assert start(client, app_citizen, "tencent_faceid").status_code == 201
    over = start(client, app_citizen, "alipay_face")
    assert over.status_code == 429, over.get_json()
    assert over.headers["Retry-After"] and over.get_json()["error"]["details"]["scope"] == "face_account"
    clock.advance(days=1, seconds=1)
    assert start(client, refreshed(client, app_citizen), "alipay_face").status_code == 201


def test_face_checks_are_limited_per_ip_per_hour(client, app, sims):
    for _ in range(10):
        assert start(client, make_citizen(app), "tencent_faceid").status_code == 201
    over = start(client, make_citizen(app), "tencent_faceid")
    assert over.status_code == 429 and over.get_json()["error"]["details"]["scope"] == "face_ip"


def test_a_provider_outage_does_not_use_up_the_daily_face_quota(client, app_citizen, sims):
    sims["tencent_faceid"].post("faults", {"down": True})
    for _ in range(4):
        assert start(client, app_citizen, "tencent_faceid").status_code == 503
    sims["tencent_faceid"].post("faults", {"down": False})
    assert start(client, app_citizen, "tencent_faceid").status_code == 201


def test_a_provider_timeout_is_a_503_within_the_timeout(client, app_citizen, sims):
    import time

    sims["id_check"].post("faults", {"latency_ms": 3000})
    began = time.monotonic()
    resp = start(client, app_citizen, "id_check", consent=None)
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "identity.provider_unavailable"
    assert time.monotonic() - began < 3.0
    sims["id_check"].post("faults", {"latency_ms": 0})
    # The simulator still answers the abandoned call 3 s after it came: let it, so it is not
    # counted as a paid check in whichever test runs next.
    time.sleep(max(0.0, 3.1 - (time.monotonic() - began)))


def test_the_owner_reads_the_full_values_and_each_read_is_audited(client, app_citizen, sims, db_session):
    tokens = start(client, app_citizen, "id_check", consent=None).get_json()["tokens"]
    assert client.get("/v1/identity/full", headers=bearer(tokens)).status_code == 422  # purpose required
    resp = client.get("/v1/identity/full", query_string={"purpose": "view"}, headers=bearer(tokens))
    assert resp.get_json() == {"name": ZHANG["name"], "id_number": ZHANG["id_number"]}
    db_session.rollback()
    reads = db_session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "pii.read", AuditEvent.target_id == app_citizen["account_id"]
        )
    ).all()
    assert len(reads) == 1 and reads[0].details == {"fields": ["name", "id_number"], "purpose": "view"}
    assert reads[0].actor_id == app_citizen["account_id"] and reads[0].at is not None


def test_full_values_of_an_unverified_account_are_a_clear_404(client, app_citizen, sims):
    resp = client.get("/v1/identity/full", query_string={"purpose": "view"}, headers=app_citizen["headers"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "identity.not_verified"


def _hall(app, client):
    return admin_headers(client, make_operator(app, username="hall1", roles=("hall_officer",)))


def test_an_in_person_check_at_a_hall_gives_l3_without_a_face_scan(
    app, client, app_citizen, sims, db_session
):
    body = {
        "account_id": app_citizen["account_id"],
        **LI,
        "hall": "越秀区政务服务中心",
        "document_checked": True,
    }
    assert client.get("/v1/identity", headers=app_citizen["headers"]).get_json()["level"] == "L1"
    resp = client.post("/admin/v1/identity/in-person-checks", json=body, headers=_hall(app, client))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["identity_level"] == "L3" and resp.get_json()["name"] == "李*"
    refreshed = client.post(
        "/v1/auth/refresh", json={"refresh_token": app_citizen["refresh_token"]}
    ).get_json()
    identity = client.get("/v1/identity", headers=bearer(refreshed)).get_json()
    assert identity["level"] == "L3" and identity["method"] == "in_person"
    db_session.rollback()
    audit = db_session.scalars(
        select(AuditEvent).where(AuditEvent.action == "identity.verification_passed")
    ).one()
    assert audit.actor_type == "operator" and audit.details["method"] == "in_person"


def test_an_in_person_check_never_replaces_the_verified_name(app, client, app_citizen, sims, db_session):
    """The officer's typed entry must be the identity the account already proved (ID check:
    the provider matched 张三); another name is refused, in the officer's language, and the
    verified name, level and history stay as they were."""
    verified = start(client, app_citizen, "id_check", consent=None).get_json()
    assert verified["identity_level"] == "L2"
    officer = _hall(app, client)
    typo = {"account_id": app_citizen["account_id"], "name": "张四", "id_number": ZHANG["id_number"],
            "hall": "越秀区政务服务中心", "document_checked": True}  # fmt: skip
    resp = client.post("/admin/v1/identity/in-person-checks", json=typo, headers=officer)
    assert resp.status_code == 409, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "identity.in_person_mismatch" and "不一致" in error["message"]
    en = client.post(
        "/admin/v1/identity/in-person-checks", json=typo, headers=officer | {"Accept-Language": "en"}
    )
    assert en.status_code == 409 and "does not match" in en.get_json()["error"]["message"]
    other = typo | {"name": LI["name"], "id_number": LI["id_number"]}  # another person altogether
    resp = client.post("/admin/v1/identity/in-person-checks", json=other, headers=officer)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "identity.different_person"
    mine = bearer(verified["tokens"])
    full = client.get("/v1/identity/full", query_string={"purpose": "view"}, headers=mine).get_json()
    assert full["name"] == ZHANG["name"] and full["id_number"] == ZHANG["id_number"]
    me = client.get("/v1/identity", headers=mine).get_json()
    assert me["level"] == "L2" and me["method"] == "id_check"
    db_session.rollback()
    in_person = select(IdentityVerification).where(IdentityVerification.method == "in_person")
    assert db_session.scalars(in_person).all() == []
    # The same person, typed with stray spaces around the name: the check passes (L3), name unchanged.
    right = typo | {"name": f" {ZHANG['name']} "}
    resp = client.post("/admin/v1/identity/in-person-checks", json=right, headers=officer)
    assert resp.status_code == 201, resp.get_json()
    full = client.get("/v1/identity/full", query_string={"purpose": "view"}, headers=mine).get_json()
    assert full["name"] == ZHANG["name"]


def test_in_person_checks_need_the_hall_officer_role_and_a_seen_document(app, client, app_citizen, sims):
    editor = admin_headers(client, make_operator(app, username="editor1", roles=("catalog_editor",)))
    body = {"account_id": app_citizen["account_id"], **LI, "hall": "越秀", "document_checked": True}
    assert client.post("/admin/v1/identity/in-person-checks", json=body, headers=editor).status_code == 403
    unchecked = body | {"document_checked": False}
    resp = client.post("/admin/v1/identity/in-person-checks", json=unchecked, headers=_hall(app, client))
    assert resp.status_code == 422


def _registered_person(sims: dict, serial: int) -> dict:
    """A resident the ID-check simulator knows, with a valid GB 11643 check character."""
    body = f"32010219800101{serial:03d}"
    total = sum(
        int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), strict=True)
    )
    person = {
        "name": "赵钱孙李周吴郑王冯陈"[serial % 10] + "试验",
        "id_number": body + "10X98765432"[total % 11],
    }
    sims["id_check"].post("people", person)
    return person


def test_two_id_checks_of_one_account_at_once_both_answer(app, sims, monkeypatch):
    """A double tap (two requests, no shared Idempotency-Key) that gets past the in-flight claim
    (it expired, or Redis lost it; the claim itself: test_id_check_in_flight.py): both are
    recorded and answered, one identity is bound. They used to deadlock on the account row, and
    one answered 500 with its paid check unrecorded."""
    import threading
    import uuid
    from typing import Any

    from sqlalchemy import func

    from core.db import db
    from core.ratelimit import RateLimiter
    from domain.identity.models import VerifiedIdentity

    monkeypatch.setattr(RateLimiter, "claim", lambda self, name, ident, *, ttl: uuid.uuid4().hex)
    deps = app.extensions["yiwang"].identity  # 16 checks from one address: not what is tested here
    monkeypatch.setattr(deps, "policy", dataclasses.replace(deps.policy, idcheck_per_ip_per_hour=100))

    for serial in range(8):  # about half the rounds deadlocked before
        who, person = make_citizen(app), _registered_person(sims, 100 + serial)
        start_line, answers = threading.Barrier(2), []

        def check(
            who: dict = who, person: dict = person, start_line: Any = start_line, answers: list = answers
        ) -> None:
            client = app.test_client()
            start_line.wait()
            try:
                got = start(client, who, "id_check", person=person, consent=None)
                answers.append(got.status_code if got.status_code != 409 else got.get_json()["error"]["code"])
            finally:
                db.remove()

        threads = [threading.Thread(target=check) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # On a busy machine the second may only start once the first has committed: it then
        # finds the account verified, which is the right answer too (never a 500).
        assert sorted(answers, key=str) in ([201, 201], [201, "identity.already_verified"]), answers
        with db.engine.connect() as conn:
            attempts = conn.scalar(
                select(func.count()).where(IdentityVerification.account_id == who["account_id"])
            )
            bound = conn.scalar(select(func.count()).where(VerifiedIdentity.account_id == who["account_id"]))
        assert (attempts, bound) == (answers.count(201), 1)


def test_an_officer_tied_to_halls_checks_in_person_only_at_them(app, client, app_citizen, sims, db_session):
    from tests.appointments.conftest import make_hall

    own, other = make_hall(app), make_hall(app)
    officer = admin_headers(client, make_operator(app, username="hall-scoped", roles=("hall_officer",),
                                                  hall_ids=(own,)))  # fmt: skip
    url = "/admin/v1/identity/in-person-checks"
    body = {"account_id": app_citizen["account_id"], **LI, "document_checked": True}
    refused = client.post(url, json=body | {"hall_id": other}, headers=officer)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "admin.out_of_scope"
    en = client.post(url, json=body | {"hall_id": other}, headers=officer | {"Accept-Language": "en"})
    assert "not assigned to this hall" in en.get_json()["error"]["message"]
    typed = client.post(url, json=body | {"hall": "越秀区政务服务中心"}, headers=officer)
    assert typed.status_code == 422 and set(typed.get_json()["error"]["fields"]) == {"hall_id"}
    db_session.rollback()
    assert db_session.scalars(select(IdentityVerification)).all() == []  # nothing written
    done = client.post(url, json=body, headers=officer)  # its only hall
    assert done.status_code == 201, done.get_json()
    db_session.rollback()
    row = db_session.scalars(select(IdentityVerification)).one()
    assert row.hall == "天河区政务服务中心"  # the hall's name, as recorded before


def test_an_officer_not_tied_to_halls_names_any_hall_by_id_or_by_name(
    app, client, app_citizen, sims, db_session
):
    from tests.appointments.conftest import make_hall

    hall = make_hall(app)
    officer = _hall(app, client)
    url = "/admin/v1/identity/in-person-checks"
    body = {"account_id": app_citizen["account_id"], **LI, "document_checked": True}
    assert client.post(url, json=body, headers=officer).status_code == 422  # no hall at all
    both = client.post(url, json=body | {"hall_id": hall, "hall": "越秀"}, headers=officer)
    assert both.status_code == 422
    unknown = client.post(url, json=body | {"hall_id": "no-such-hall"}, headers=officer)
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "appointments.hall_not_found"
    assert client.post(url, json=body | {"hall_id": hall}, headers=officer).status_code == 201
    assert client.post(url, json=body | {"hall": "越秀区政务服务中心"}, headers=officer).status_code == 201
    db_session.rollback()
    halls = db_session.scalars(select(IdentityVerification.hall).order_by(IdentityVerification.created_at))
    assert sorted(halls) == sorted(["天河区政务服务中心", "越秀区政务服务中心"])
