"""A face counts from when its check was started: a result collected hours later is not a
fresh face for a step-up that needs one within minutes."""

from __future__ import annotations

import pytest

from domain.catalog.importing import import_catalog
from domain.operators.audit_log import Actor
from tests.api.v1.identity.conftest import bearer, complete, ref_of, refreshed, start
from tests.domain.catalog.factories import document, item

PENSION = item("000105011000", "养老金领取资格认证", identity={"min_level": "L3", "face_within_minutes": 10})


@pytest.fixture
def published(db_session):
    doc = document(PENSION, publish=True)
    report = import_catalog(db_session, Actor(type="operator", id="op-1"), doc, dry_run=False)
    assert report.ok, report.problems


@pytest.mark.parametrize("method,hours", [("alipay_face", 20), ("tencent_faceid", 1.9)])
def test_face_done_hours_ago_is_not_fresh(client, app_citizen, sims, published, clock, method, hours):
    body = start(client, app_citizen, method).get_json()
    sims[method].perform(ref_of(body), "pass")  # the face is done now
    clock.advance(hours=hours)  # ... and the phone asks for the result much later
    who = refreshed(client, app_citizen)
    result = complete(client, who, body["verification"]["id"])
    assert result.status_code == 200, result.get_json()
    res = result.get_json()
    assert res["identity_level"] == "L3"
    check = client.get(f"/v1/services/{PENSION['code']}/identity-check", headers=bearer(res["tokens"]))
    # face_within_minutes=10, but the face is hours old
    assert check.status_code == 403, check.get_json()


def test_a_face_completed_at_once_is_fresh(client, app_citizen, sims, published):
    body = start(client, app_citizen, "tencent_faceid").get_json()
    sims["tencent_faceid"].perform(ref_of(body), "pass")
    res = complete(client, app_citizen, body["verification"]["id"]).get_json()
    check = client.get(f"/v1/services/{PENSION['code']}/identity-check", headers=bearer(res["tokens"]))
    assert check.status_code == 200, check.get_json()
