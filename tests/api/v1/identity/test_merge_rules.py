"""Who may take an identity another account holds, and what follows the person on a merge."""

from __future__ import annotations

import threading

from sqlalchemy import select

from core.audit import AuditEvent
from domain.accounts.models import ACTIVE, DELETED, Account
from domain.identity.models import ConsentRecord, IdentityVerification, VerifiedIdentity
from tests.api.v1.applications.conftest import seeded  # noqa: F401 - fixture
from tests.api.v1.identity.conftest import URL, ZHANG, bearer, complete, mini_citizen, ref_of, start
from tests.conftest import make_citizen


def _face_verified_mini(client, wx, sims, person=ZHANG, **user) -> dict:
    """A WeChat-only account that proved `person` with a live face check (L3)."""
    who = mini_citizen(client, wx, **user)
    body = start(client, who, "wechat_face", person=person).get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    done = complete(client, who, body["verification"]["id"]).get_json()
    assert done["identity_level"] == "L3", done
    return who | {"headers": bearer(done["tokens"])}


def test_an_id_check_never_takes_over_the_account_holding_the_identity(client, app, wx, sims, db_session):
    # The person verified with their face in the mini-program; someone else knows their name
    # and ID number (not secrets) and runs an ID check from another account.
    victim = _face_verified_mini(client, wx, sims)
    attacker = make_citizen(app)
    before = sims["id_check"].calls()
    resp = start(client, attacker, "id_check", consent=None)
    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["error"]["code"] == "identity.bound_to_other_account"
    # Refused once the provider matched name and number: before that, the refusal would tell
    # anyone, for free and without the name, that the number is verified here.
    assert sims["id_check"].calls() == before + 1
    # Nothing moved: the person's account and session are untouched, the other stays L1.
    assert client.get("/v1/me", headers=victim["headers"]).status_code == 200
    db_session.rollback()
    assert db_session.get(Account, victim["account_id"]).status == ACTIVE
    other = db_session.get(Account, attacker["account_id"])
    assert (other.status, other.identity_level, other.merged_into_id) == (ACTIVE, "L1", None)
    holder = db_session.scalar(select(VerifiedIdentity.account_id))
    assert holder == victim["account_id"]


def _face_verified_app(client, app, sims, person=ZHANG) -> dict:
    """An app account (phone login) that proved `person` with a live face check (L3)."""
    who = make_citizen(app)
    body = start(client, who, "tencent_faceid", person=person).get_json()
    sims["tencent_faceid"].perform(ref_of(body), "pass")
    done = complete(client, who, body["verification"]["id"]).get_json()
    assert done["identity_level"] == "L3", done
    return who | {"headers": bearer(done["tokens"])}


def test_a_face_check_merges_and_the_merge_is_audited_as_the_citizen_who_proved_it(
    client, app, wx, sims, db_session
):
    # The person proved their face in the app; the same face in the mini-program is them again.
    first = _face_verified_app(client, app, sims)
    second = mini_citizen(client, wx)
    body = start(client, second, "wechat_face").get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    assert complete(client, second, body["verification"]["id"]).get_json()["merged"] is True
    db_session.rollback()
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "account.merged"))
    assert (event.actor_type, event.actor_id, event.target_id) == (
        "citizen", second["account_id"], second["account_id"],
    )  # fmt: skip
    assert event.details["into"] == first["account_id"]


def test_a_face_takes_the_identity_from_an_account_that_only_typed_name_and_number(
    client, app, wx, sims, db_session
):
    # Someone who knows the person's name and ID number (not secrets) verified them by ID check.
    squatter = make_citizen(app)
    assert start(client, squatter, "id_check", consent=None).get_json()["identity_level"] == "L2"
    # The person's own face in the mini-program: they get their identity; nothing merges into
    # the squatter's account, and the squatter's sessions end (nothing of theirs acts as L2).
    person = mini_citizen(client, wx)
    body = start(client, person, "wechat_face").get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    done = complete(client, person, body["verification"]["id"]).get_json()
    assert done["identity_level"] == "L3" and not done.get("merged"), done
    assert client.get("/v1/me", headers=squatter["headers"]).status_code == 401
    db_session.rollback()
    holder = db_session.scalar(select(VerifiedIdentity.account_id))
    assert holder == person["account_id"]
    left = db_session.get(Account, squatter["account_id"])
    assert (left.status, left.identity_level, left.merged_into_id) == (ACTIVE, "L1", None)
    assert db_session.get(Account, person["account_id"]).status == ACTIVE
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "identity.displaced"))
    assert event.target_id == squatter["account_id"] and event.details["by_account"] == person["account_id"]


def test_a_hall_check_takes_the_identity_from_a_name_and_number_holder(client, app, sims, db_session):
    from tests.domain.operators.factories import admin_headers, make_operator

    squatter, person = make_citizen(app), make_citizen(app)
    assert start(client, squatter, "id_check", consent=None).get_json()["identity_level"] == "L2"
    officer = admin_headers(client, make_operator(app, username="hall-1", roles=("hall_officer",)))
    check = {
        "account_id": person["account_id"],
        **ZHANG,
        "hall": "越秀区政务服务中心",
        "document_checked": True,
    }
    checked = client.post("/admin/v1/identity/in-person-checks", headers=officer, json=check)
    assert checked.status_code == 201, checked.get_json()
    db_session.rollback()
    assert db_session.scalar(select(VerifiedIdentity.account_id)) == person["account_id"]
    assert db_session.get(Account, squatter["account_id"]).identity_level == "L1"


def test_a_face_does_not_take_an_identity_proved_by_face_elsewhere_without_a_merge(client, app, sims):
    """Two phone accounts cannot merge (two phones under one account): the second face check is
    refused, and the first account, which proved the identity live, keeps it."""
    first = _face_verified_app(client, app, sims)
    second = make_citizen(app)
    resp = start(client, second, "tencent_faceid")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "identity.bound_to_other_account"
    assert client.get("/v1/identity", headers=first["headers"]).get_json()["level"] == "L3"


def test_a_phone_merge_carries_the_verification_history_and_consents(client, app, wx, sims, db_session):
    sms = make_citizen(app, phone="13712345678")
    user = wx.add_user(phone="13712345678")
    login = client.post("/v1/auth/miniprogram/login", json={"code": wx.login_code(user["openid"])}).get_json()
    mp = {"headers": bearer(login), "account_id": login["account_id"]}
    # In the mini-program the person consents to a face check and abandons it at WeChat.
    started = start(client, mp, "wechat_face")
    assert started.status_code == 201, started.get_json()
    bound = client.post(
        "/v1/auth/miniprogram/phone", json={"code": wx.phone_code(user["openid"])}, headers=mp["headers"]
    ).get_json()
    assert bound["merged"] is True
    db_session.rollback()
    verification = db_session.get(IdentityVerification, started.get_json()["verification"]["id"])
    assert verification.account_id == sms["account_id"]
    consents = db_session.scalars(select(ConsentRecord.account_id)).all()
    assert consents == [sms["account_id"]]
    # The merged account's owner reads its own history through the API.
    got = client.get(f"{URL}/{verification.id}", headers=bearer(bound["tokens"]))
    assert got.status_code == 200 and got.get_json()["status"] == "pending"
    assert db_session.get(Account, mp["account_id"]).status == DELETED


def test_a_phone_merge_brings_the_verified_identity_along(client, app, wx, sims, db_session):
    """The person logged in by SMS once (L1), later verified their face in the mini-program,
    then binds that phone there: the accounts merge into the phone's, and the identity with
    them, not only its level: its name and number are there, and it is theirs."""
    sms = make_citizen(app, phone="13712345678")
    mini = _face_verified_mini(client, wx, sims, phone="13712345678")
    bound = client.post(
        "/v1/auth/miniprogram/phone", json={"code": wx.phone_code(mini["openid"])}, headers=mini["headers"]
    ).get_json()
    assert bound["merged"] is True, bound
    db_session.rollback()
    held = db_session.scalars(select(VerifiedIdentity)).all()
    assert [v.account_id for v in held] == [sms["account_id"]]
    merged = bearer(bound["tokens"])
    assert client.get("/v1/me", headers=merged).get_json()["id"] == sms["account_id"]
    shown = client.get("/v1/identity", headers=merged).get_json()
    assert shown["level"] == "L3" and shown["method"] == "wechat_face" and shown["id_number"], shown
    full = client.get("/v1/identity/full?purpose=view", headers=merged)
    assert full.status_code == 200 and full.get_json()["id_number"] == ZHANG["id_number"]
    # Theirs, not another account's: checking it again is "already verified", not "bound elsewhere".
    again = start(client, {"headers": merged}, "id_check", consent=None)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "identity.already_verified"


def test_two_accounts_checking_one_identity_at_once_get_one_binding_and_one_refusal(
    client, app, sims, db_session
):
    # The check takes 400 ms at the provider, so both requests pass the early check before
    # either binds: the database decides, and the loser gets a clear 409, not a 500.
    sims["id_check"].post("faults", {"latency_ms": 400})
    citizens = [make_citizen(app), make_citizen(app)]
    results: dict[int, tuple[int, dict]] = {}
    gate = threading.Barrier(2)

    def run(i: int) -> None:
        with app.test_client() as c:
            gate.wait()
            resp = start(c, citizens[i], "id_check", consent=None)
            results[i] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    codes = sorted(code for code, _ in results.values())
    assert codes == [201, 409], results
    loser = next(body for code, body in results.values() if code == 409)
    assert loser["error"]["code"] == "identity.bound_to_other_account"
    db_session.rollback()
    holders = db_session.scalars(select(VerifiedIdentity.account_id)).all()
    winner = next(i for i, (code, _) in results.items() if code == 201)
    assert holders == [citizens[winner]["account_id"]]
    # The paid check of the loser is on record as failed, with the reason the citizen saw.
    lost = db_session.scalars(
        select(IdentityVerification).where(
            IdentityVerification.account_id == citizens[1 - winner]["account_id"]
        )
    ).all()
    assert [(v.status, v.reason) for v in lost] == [("failed", "bound_to_other_account")]


def test_a_merge_carries_the_drafts_their_files_and_a_complaints_evidence(
    client,
    app,
    wx,
    sims,
    db_session,
    clock,
    services,
    seeded,  # noqa: F811
):
    from domain.applications import materials
    from domain.applications.models import ApplicationFile
    from tests.api.v1.applications.conftest import SS_CARD, create, jpeg, upload

    sms = make_citizen(app, phone="13712345679")
    user = wx.add_user(phone="13712345679")
    login = client.post("/v1/auth/miniprogram/login", json={"code": wx.login_code(user["openid"])}).get_json()
    mp = {"headers": bearer(login), "account_id": login["account_id"]}
    # In the mini-program the person starts an application and complains about a counter,
    # with the photo they had uploaded for it as evidence.
    draft = create(client, mp, service_code=SS_CARD).get_json()
    evidence = upload(client, mp, draft["id"], "id_card", jpeg()).get_json()["id"]
    made = client.post(
        "/v1/complaints",
        json={
            "kind": "complaint",
            "category": "efficiency",
            "text": "窗口拒收这张照片",
            "attachments": [evidence],
        },
        headers=mp["headers"],
    )
    assert made.status_code == 201, made.get_json()
    bound = client.post(
        "/v1/auth/miniprogram/phone", json={"code": wx.phone_code(user["openid"])}, headers=mp["headers"]
    ).get_json()
    assert bound["merged"] is True
    merged = {"headers": bearer(bound["tokens"])}
    # The surviving account finds the draft where it left it, and may remove it.
    listed = client.get("/v1/applications", headers=merged["headers"]).get_json()["items"]
    assert [a["id"] for a in listed] == [draft["id"]]
    got = client.get(f"/v1/applications/{draft['id']}", headers=merged["headers"])
    assert (
        got.status_code == 200
        and {m["id"]: m["satisfied"] for m in got.get_json()["materials"]}["id_card"] is True
    )
    assert client.delete(f"/v1/applications/{draft['id']}", headers=merged["headers"]).status_code == 204
    # The complaint's evidence outlives the draft, and the merged account still reads it.
    deps = services.applications
    clock.advance(seconds=deps.orphan_grace_seconds + 1)
    materials.sweep_orphans(db_session, deps)
    db_session.expire_all()
    assert db_session.get(ApplicationFile, evidence) is not None
    _, stored = materials.read_file(db_session, deps, account_id=sms["account_id"], file_id=evidence)
    assert stored[:3] == b"\xff\xd8\xff"
