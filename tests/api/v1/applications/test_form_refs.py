"""A form whose field schema points into the form's own `$defs` is checked field by field too."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import update

from core import clock
from domain.applications import states
from domain.applications.models import Application
from domain.catalog.importing import import_catalog
from domain.operators.audit_log import Actor
from tests.api.v1.applications.conftest import create, error_code, patch
from tests.domain.catalog.factories import document, item


def _postcode_item() -> dict:
    doc = item("000105013000", "户籍迁入登记")
    schema = copy.deepcopy(doc["form"]["schema"])
    schema["$defs"] = {"postcode": {"type": "string", "pattern": "^[0-9]{6}$"}}
    # The reference sits inside the field's schema, not in place of it.
    schema["properties"]["reason"]["properties"]["postcode"] = {"allOf": [{"$ref": "#/$defs/postcode"}]}
    doc["form"]["schema"] = schema
    return doc


POSTCODE = _postcode_item()


@pytest.fixture
def published(db_session):
    report = import_catalog(
        db_session, Actor(type="operator", id="op-1"), document(POSTCODE, publish=True), dry_run=False
    )
    assert report.ok, report.problems


def test_a_nested_reference_is_followed_when_a_field_is_saved(client, zhang, published):
    draft = create(client, zhang, service_code=POSTCODE["code"]).get_json()
    bad = patch(client, zhang, draft, {"reason": {"postcode": "51000X"}})
    assert error_code(bad) == "application.invalid_patch"
    assert list(bad.get_json()["error"]["fields"]) == ["data.reason.postcode"]
    good = patch(client, zhang, draft, {"reason": {"postcode": "510000"}})
    assert good.status_code == 200, good.get_json()
    assert good.get_json()["data"]["reason"]["postcode"] == "510000"


def test_a_returning_citizen_gets_an_earlier_answer_to_such_a_field(client, zhang, published, db_session):
    """Prefill from the latest submitted application checks each earlier answer against the
    field's schema, which must resolve the reference too (before, a 500 on creating the draft)."""
    first = create(client, zhang, service_code=POSTCODE["code"]).get_json()
    assert patch(client, zhang, first, {"reason": {"postcode": "510000"}}).status_code == 200
    # As if it had been submitted (the walk through submission is test_flow's).
    db_session.execute(
        update(Application)
        .where(Application.id == first["id"])
        .values(status=states.SUBMITTED, submitted_at=clock.now())
    )
    db_session.commit()
    again = create(client, zhang, service_code=POSTCODE["code"])
    assert again.status_code == 201, again.get_json()
    body = again.get_json()
    assert body["data"]["reason"]["postcode"] == "510000"
    assert body["provenance"]["reason.postcode"]["source"] == "application"
