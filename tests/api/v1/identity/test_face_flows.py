"""Face verification end to end: API → domain → real client → simulator, for every provider."""

from __future__ import annotations

import jwt
import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from domain.identity.models import ConsentRecord, IdentityVerification
from tests.api.v1.identity.conftest import (
    CONSENT,
    LI,
    URL,
    ZHANG,
    bearer,
    complete,
    mini_citizen,
    ref_of,
    refreshed,
    start,
)
from tests.conftest import make_citizen

APP_METHODS = ("tencent_faceid", "alipay_face")


@pytest.fixture(params=[*APP_METHODS, "wechat_face"])
def face(request, client, wx, app_citizen, sims):
    """(method, citizen on the channel that offers it, that method's simulator)."""
    method = request.param
    who = mini_citizen(client, wx) if method == "wechat_face" else app_citizen
    return method, who, sims[method]


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def test_a_passed_face_check_raises_the_account_to_l3(client, face, db_session, clock):
    method, who, sim = face
    started = start(client, who, method)
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    verification = body["verification"]
    assert verification["status"] == "pending" and verification["method"] == method
    assert verification["name"] == "张*" and verification["id_number"] == "110***********8515"
    assert body["identity_level"] == "L1" and body["tokens"] is None

    # The phone claims nothing: before the citizen finishes, the provider says "not yet".
    # (Alipay cannot say it: its bare "F" ends the attempt, see the Alipay tests below.)
    if method != "alipay_face":
        early = complete(client, who, verification["id"])
        assert early.status_code == 202, early.get_json()
        assert early.get_json()["verification"]["status"] == "pending"

    sim.perform(ref_of(body), "pass")
    done = complete(client, who, verification["id"])
    assert done.status_code == 200, done.get_json()
    result = done.get_json()
    assert result["verification"]["status"] == "passed" and result["identity_level"] == "L3"
    claims = _claims(result["tokens"]["access_token"])
    assert claims["idl"] == "L3" and claims["ilt"] == int(clock.now().timestamp())

    identity = client.get("/v1/identity", headers=bearer(result["tokens"])).get_json()
    assert identity["level"] == "L3" and identity["method"] == method
    assert identity["name"] == "张*" and identity["id_number"] == "110***********8515"
    assert identity["live_checked_at"] is not None

    # A finished verification cannot be completed (replayed) again.
    again = complete(client, who, verification["id"])
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "identity.verification_finished"

    db_session.rollback()
    row = db_session.get(IdentityVerification, verification["id"])
    assert row.name_enc is None and row.id_number_enc is None and row.provider_ref_enc is None
    consent = db_session.get(ConsentRecord, row.consent_id)
    assert consent.text_version == "face-2026-12" and consent.purpose == "face_verification"
    assert consent.channel == ("miniprogram" if method == "wechat_face" else "app")
    actions = set(
        db_session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == who["account_id"]))
    )
    assert {"identity.verification_passed", "identity.level_raised"} <= actions


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("liveness_fail", "liveness_failed"), ("other_person", "identity_mismatch"), ("cancel", "cancelled")],
)
def test_a_failed_face_check_says_why_and_keeps_the_level(client, face, outcome, reason):
    method, who, sim = face
    body = start(client, who, method).get_json()
    sim.perform(ref_of(body), outcome)
    done = complete(client, who, body["verification"]["id"])
    if method == "alipay_face" and outcome == "cancel":
        reason = "rejected"  # Alipay records nothing when the citizen leaves: a bare "F", not passed
    assert done.status_code == 200, done.get_json()
    result = done.get_json()
    assert result["verification"]["status"] == "failed"
    assert result["verification"]["reason"] == reason
    assert result["verification"]["reason_message"]
    assert result["identity_level"] == "L1" and result["tokens"] is None
    assert client.get("/v1/identity", headers=who["headers"]).get_json()["level"] == "L1"


@pytest.mark.parametrize("outcome", ["liveness_fail", "other_person"])
def test_an_alipay_failure_without_a_reason_is_failed_not_pending(client, app_citizen, sims, outcome):
    """Alipay gives no fail_reason unless it enabled the extension for the merchant: the bare
    "F" is a failed verification the citizen is told about, in their language, not "pending"."""
    sim = sims["alipay_face"]
    sim.post("merchant", {"fail_reason": False})
    body = start(client, app_citizen, "alipay_face").get_json()
    sim.perform(ref_of(body), outcome)
    done = complete(client, app_citizen, body["verification"]["id"])
    assert done.status_code == 200, done.get_json()
    verification = done.get_json()["verification"]
    assert (verification["status"], verification["reason"]) == ("failed", "rejected")
    assert verification["reason_message"] == "认证未通过，请稍后重试或选择其他认证方式"
    assert done.get_json()["identity_level"] == "L1"
    en = client.get(
        f"{URL}/{verification['id']}", headers=app_citizen["headers"] | {"Accept-Language": "en"}
    ).get_json()
    assert en["status"] == "failed" and en["reason_message"].startswith("The verification did not pass")
    again = complete(client, app_citizen, verification["id"])
    assert again.status_code == 409  # finished: a new attempt is needed


def test_an_unregistered_identity_fails_even_with_a_live_face(client, face):
    method, who, sim = face
    fake = {"name": "赵六", "id_number": "110101198001010010"}  # valid checksum, nobody registered
    body = start(client, who, method, person=fake).get_json()
    sim.perform(ref_of(body), "pass")
    result = complete(client, who, body["verification"]["id"]).get_json()
    assert result["verification"]["status"] == "failed"
    assert result["verification"]["reason"] in ("identity_mismatch", "no_record")


def test_a_verification_expires_with_the_provider_lifetime(client, face, clock):
    method, who, sim = face
    body = start(client, who, method).get_json()
    sim.perform(ref_of(body), "pass")
    clock.advance(days=4)  # past every provider's lifetime (FaceID results: 3 days)
    done = complete(client, refreshed(client, who), body["verification"]["id"]).get_json()
    assert done["verification"]["status"] == "expired" and done["identity_level"] == "L1"


def test_the_provider_saying_expired_is_an_expired_verification(client, face):
    method, who, sim = face
    body = start(client, who, method).get_json()
    sim.post("advance", {"seconds": 4 * 86400})  # only the provider's clock moves
    done = complete(client, who, body["verification"]["id"])
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["verification"]["status"] == "expired"


def test_provider_down_is_a_clear_503_and_nothing_is_written(client, face, db_session):
    method, who, sim = face
    if method == "wechat_face":
        sim.post(
            "faults", {"endpoint": "cityservice/face/identify/getverifyid", "http_status": 503, "times": 3}
        )
    else:
        sim.post("faults", {"down": True})
    resp = start(client, who, method)
    assert resp.status_code == 503, resp.get_json()
    assert resp.get_json()["error"]["code"] == "identity.provider_unavailable"
    db_session.rollback()
    assert db_session.scalars(select(IdentityVerification)).all() == []
    assert db_session.scalars(select(ConsentRecord)).all() == []


def test_provider_down_at_completion_leaves_the_verification_pending(client, face):
    method, who, sim = face
    body = start(client, who, method).get_json()
    sim.perform(ref_of(body), "pass")
    if method == "wechat_face":
        sim.post(
            "faults", {"endpoint": "cityservice/face/identify/queryverifyinfo", "errcode": -1, "times": 1}
        )
    else:
        sim.post("faults", {"down": True})
    failed = complete(client, who, body["verification"]["id"])
    assert failed.status_code == 503, failed.get_json()
    if method != "wechat_face":
        sim.post("faults", {"down": False})
    retried = complete(client, who, body["verification"]["id"])
    assert retried.status_code == 200 and retried.get_json()["verification"]["status"] == "passed"


def test_a_retried_complete_with_the_same_key_replays_the_first_answer(client, face):
    method, who, sim = face
    body = start(client, who, method).get_json()
    sim.perform(ref_of(body), "pass")
    key = {"Idempotency-Key": "complete-0001"}
    first = complete(client, who, body["verification"]["id"], **key)
    second = complete(client, who, body["verification"]["id"], **key)
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()


def test_a_pending_answer_is_not_replayed_when_the_phone_retries_with_its_key(client, face):
    # The phone asks too early (the citizen is still at the provider), then retries with the
    # same key once the face check is done: it must get the result, not the stale 202.
    method, who, sim = face
    if method == "alipay_face":
        pytest.skip("Alipay's query does not tell an unfinished flow from a failed one: no 202")
    body = start(client, who, method).get_json()
    key = {"Idempotency-Key": "complete-early-0001"}
    early = complete(client, who, body["verification"]["id"], **key)
    assert early.status_code == 202 and early.get_json()["verification"]["status"] == "pending"
    sim.perform(ref_of(body), "pass")
    later = complete(client, who, body["verification"]["id"], **key)
    assert later.status_code == 200 and "Idempotent-Replayed" not in later.headers
    assert later.get_json()["verification"]["status"] == "passed"


def test_a_lone_surrogate_in_a_name_is_a_clear_422(client, app_citizen, sims):
    # JSON can escape half of a UTF-16 pair; no database, log or provider can hold it.
    resp = client.post(
        URL,
        data='{"method": "id_check", "name": "\\ud800", "id_number": "110101199003078515"}',
        content_type="application/json",
        headers=app_citizen["headers"],
    )
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert resp.get_json()["error"]["code"] == "request.validation_failed"
    assert sims["id_check"].calls() == 0


def test_face_needs_the_separate_consent_of_the_current_text(client, face, db_session):
    method, who, sim = face
    before = sim.calls()
    missing = start(client, who, method, consent=None)
    assert missing.status_code == 422 and missing.get_json()["error"]["code"] == "identity.consent_required"
    assert missing.get_json()["error"]["details"]["text_version"] == "face-2026-12"
    unticked = start(client, who, method, consent={"accepted": False, "text_version": "face-2026-12"})
    assert unticked.status_code == 422
    old = start(client, who, method, consent={"accepted": True, "text_version": "face-2020-01"})
    assert old.status_code == 409 and old.get_json()["error"]["code"] == "identity.consent_outdated"
    assert sim.calls() == before  # no paid call without consent
    text = client.get("/v1/identity/consent", headers=who["headers"]).get_json()
    assert text["text_version"] == "face-2026-12" and "政务服务大厅" in text["text"]
    assert method in text["methods"]


def test_each_channel_offers_only_its_configured_methods(client, wx, app_citizen, sims):
    mini = mini_citizen(client, wx)
    wrong = start(client, app_citizen, "wechat_face")
    assert wrong.status_code == 422 and wrong.get_json()["error"]["code"] == "identity.method_unavailable"
    assert "tencent_faceid" in wrong.get_json()["error"]["details"]["methods"]
    assert start(client, mini, "alipay_face").status_code == 422


def test_wechat_face_uses_the_citizens_own_openid(client, wx, sims):
    who = mini_citizen(client, wx)
    body = start(client, who, "wechat_face").get_json()
    sims["wechat_face"].perform(ref_of(body), "pass")
    assert complete(client, who, body["verification"]["id"]).get_json()["identity_level"] == "L3"


def test_someone_elses_verification_is_not_found(client, face, app):
    from tests.conftest import make_citizen

    method, who, _ = face
    body = start(client, who, method).get_json()
    other = make_citizen(app)
    resp = complete(client, other, body["verification"]["id"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "identity.verification_not_found"
    assert client.get(f"{URL}/{body['verification']['id']}", headers=other["headers"]).status_code == 404


def test_an_account_cannot_prove_a_second_person(client, app_citizen, sims):
    body = start(client, app_citizen, "tencent_faceid").get_json()
    sims["tencent_faceid"].perform(ref_of(body), "pass")
    tokens = complete(client, app_citizen, body["verification"]["id"]).get_json()["tokens"]
    who = {"headers": bearer(tokens)}
    resp = start(client, who, "alipay_face", person=LI)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "identity.different_person"


def test_english_messages_on_request(client, app_citizen, sims):
    resp = start(client, app_citizen, "tencent_faceid", consent=None, **{"Accept-Language": "en"})
    assert "consent" in resp.get_json()["error"]["message"]
    assert CONSENT["text_version"] in str(resp.get_json())
    assert ZHANG["id_number"] not in resp.get_data(as_text=True)


def test_a_provider_refusing_the_person_at_start_is_a_failed_verification(
    client, app_citizen, sims, db_session
):
    sims["tencent_faceid"].post("faults", {"errors": ["FailedOperation.IdNameMisMatch"]})
    resp = start(client, app_citizen, "tencent_faceid")
    assert resp.status_code == 201, resp.get_json()
    verification = resp.get_json()["verification"]
    assert verification["status"] == "failed" and verification["reason"] == "identity_mismatch"
    assert verification["client"] is None
    db_session.rollback()
    row = db_session.get(IdentityVerification, verification["id"])
    assert row.provider_code == "FailedOperation.IdNameMisMatch" and row.consent_id is not None


@pytest.mark.parametrize("method", ["alipay_face", "id_check"])
def test_a_badly_signed_provider_answer_is_refused_and_nothing_is_granted(
    client, app_citizen, sims, method, db_session
):
    sims[method].post("faults", {"bad_response_signature": True})
    resp = start(client, app_citizen, method, consent=CONSENT if method != "id_check" else None)
    assert resp.status_code == 502, resp.get_json()
    assert resp.get_json()["error"]["code"] == "identity.provider_error"
    db_session.rollback()
    assert db_session.scalars(select(IdentityVerification)).all() == []
    sims[method].post("faults", {"bad_response_signature": False})
    assert client.get("/v1/identity", headers=app_citizen["headers"]).get_json()["level"] == "L1"


def test_a_forged_passing_answer_at_completion_is_refused(client, app_citizen, sims):
    body = start(client, app_citizen, "alipay_face").get_json()
    sims["alipay_face"].perform(ref_of(body), "pass")
    sims["alipay_face"].post("faults", {"bad_response_signature": True})
    forged = complete(client, app_citizen, body["verification"]["id"])
    assert forged.status_code == 502 and forged.get_json()["error"]["code"] == "identity.provider_error"
    sims["alipay_face"].post("faults", {"bad_response_signature": False})
    assert (
        client.get(f"{URL}/{body['verification']['id']}", headers=app_citizen["headers"]).get_json()["status"]
        == "pending"
    )


def test_an_abandoned_verification_loses_its_personal_data_when_the_sweeper_runs(
    client, app_citizen, sims, db_session, clock
):
    from workers.sweeper import run_once

    body = start(client, app_citizen, "tencent_faceid").get_json()
    assert run_once()["verifications_expired"] == 0  # still within the provider's lifetime
    db_session.rollback()
    row = db_session.get(IdentityVerification, body["verification"]["id"])
    assert row.name_enc and row.id_number_enc and row.provider_ref_enc
    clock.advance(seconds=7201)  # FaceID's BizToken lifetime
    assert run_once()["verifications_expired"] == 0  # a late call to complete may still collect it
    clock.advance(seconds=600)  # the grace for that (identity.service.COMPLETE_GRACE)
    assert run_once()["verifications_expired"] == 1
    db_session.rollback()
    row = db_session.get(IdentityVerification, body["verification"]["id"])
    assert row.status == "expired" and row.reason == "expired"
    assert row.name_enc is None and row.id_number_enc is None and row.provider_ref_enc is None
    assert row.name_masked == "张*"


def test_a_wechat_face_check_without_a_wechat_identity_is_refused_not_a_provider_error(client, app, sims):
    """A mini-program session of an account with no openid for this mini-program (signed in by
    SMS): nothing to start the WeChat check with, so a clear 422 rather than a 502."""
    who = make_citizen(app, channel="miniprogram")
    resp = start(client, who, "wechat_face")
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["code"] == "identity.method_unavailable"
