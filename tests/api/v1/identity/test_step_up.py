"""Step-up: a service that needs a fresh face check refuses an older one and accepts a new one."""

from __future__ import annotations

import pytest

from domain.catalog.importing import import_catalog
from domain.operators.audit_log import Actor
from tests.api.v1.identity.conftest import bearer, complete, ref_of, start
from tests.domain.catalog.factories import document, item

PENSION = item("000105011000", "养老金领取资格认证", identity={"min_level": "L3", "face_within_minutes": 10})
TRANSCRIPT = item("000105012000", "户籍证明开具", identity={"min_level": "L2"})


@pytest.fixture
def published(db_session):
    doc = document(PENSION, TRANSCRIPT, publish=True)
    report = import_catalog(db_session, Actor(type="operator", id="op-1"), doc, dry_run=False)
    assert report.ok, report.problems


def _check(client, headers, doc):
    return client.get(f"/v1/services/{doc['code']}/identity-check", headers=headers)


def _face(client, who, sims, method="tencent_faceid"):
    body = start(client, who, method).get_json()
    sims[method].perform(ref_of(body), "pass")
    result = complete(client, who, body["verification"]["id"]).get_json()
    assert result["identity_level"] == "L3", result
    return {"headers": bearer(result["tokens"])}


def test_a_fresh_l3_service_refuses_an_old_face_check_and_accepts_a_new_one(
    client, app_citizen, sims, published, clock
):
    low = _check(client, app_citizen["headers"], PENSION)
    assert low.status_code == 403
    error = low.get_json()["error"]
    assert error["code"] == "identity.level_required"
    assert error["details"]["required_level"] == "L3" and error["details"]["max_age_seconds"] == 600
    assert error["details"]["methods"] == ["tencent_faceid", "alipay_face", "in_person"]

    who = _face(client, app_citizen, sims)
    assert _check(client, who["headers"], PENSION).get_json()["meets"] is True

    clock.advance(minutes=11)
    # A refreshed token still carries the time of the face check, not of the refresh.
    stale = _check(client, who["headers"], PENSION)
    assert stale.status_code == 403, stale.get_json()
    assert stale.get_json()["error"]["code"] == "identity.fresh_face_required"
    assert "人脸" in stale.get_json()["error"]["message"]
    # The L2 service is still fine with the older check.
    assert _check(client, who["headers"], TRANSCRIPT).status_code == 200

    again = _face(client, who, sims, method="alipay_face")
    assert _check(client, again["headers"], PENSION).status_code == 200


def test_a_refreshed_token_keeps_the_time_of_the_face_check(client, app_citizen, sims, published, clock):
    _face(client, app_citizen, sims)
    clock.advance(minutes=11)
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": app_citizen["refresh_token"]})
    assert refreshed.status_code == 200
    stale = _check(client, bearer(refreshed.get_json()), PENSION)
    assert stale.status_code == 403 and stale.get_json()["error"]["code"] == "identity.fresh_face_required"


def test_unknown_services_are_404(client, app_citizen, sims, published):
    resp = client.get("/v1/services/NOPE/identity-check", headers=app_citizen["headers"])
    assert resp.status_code == 404
