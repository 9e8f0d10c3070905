"""A bundle's applications carry the bundle's own name: after a rename, and when two bundles
hold the same items (the per-process form cache once kept the first name it saw)."""

from __future__ import annotations

import uuid

from domain.catalog.importing import import_catalog
from domain.operators.audit_log import Actor
from tests.conftest import make_citizen
from tests.domain.catalog.factories import bundle, document, item, marriage_item

ACTOR = Actor(type="operator", id="op-1")
CARD = item()
MARRIAGE = marriage_item()


def _imp(db_session, *parts, bundles=None, publish=True):
    r = import_catalog(db_session, ACTOR, document(*parts, bundles=bundles, publish=publish), dry_run=False)
    assert r.ok, r.problems
    return r


def _clear_spec_cache():
    from domain.applications import forms

    forms._cache.clear()


def test_bundle_rename_reaches_new_applications(app, client, db_session):
    """An operator renames a bundle (same items, same versions) and republishes: a citizen who
    starts the bundle afterwards must see the new name on the application."""
    _clear_spec_cache()
    _imp(
        db_session, CARD, MARRIAGE, bundles=[bundle([CARD["code"], MARRIAGE["code"]], name="结婚换证一件事")]
    )
    who = make_citizen(app)
    first = client.post(
        "/v1/applications",
        json={"bundle_id": "YJS-TEST"},
        headers={**who["headers"], "Idempotency-Key": str(uuid.uuid4())},
    )
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["service_name"] == "结婚换证一件事"
    _imp(db_session, bundles=[bundle([CARD["code"], MARRIAGE["code"]], name="婚育户籍一件事")])
    assert client.get("/v1/bundles/YJS-TEST").get_json()["name"] == "婚育户籍一件事"
    second = client.post(
        "/v1/applications",
        json={"bundle_id": "YJS-TEST"},
        headers={**who["headers"], "Idempotency-Key": str(uuid.uuid4())},
    )
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["service_name"] == "婚育户籍一件事"


def test_two_bundles_with_same_items_keep_their_own_names(app, client, db_session):
    _clear_spec_cache()
    _imp(
        db_session,
        CARD,
        MARRIAGE,
        bundles=[
            bundle([CARD["code"], MARRIAGE["code"]], code="YJS-AAAA", name="甲一件事"),
            bundle([CARD["code"], MARRIAGE["code"]], code="YJS-BBBB", name="乙一件事"),
        ],
    )
    who = make_citizen(app)
    names = []
    for code in ("YJS-AAAA", "YJS-BBBB"):
        r = client.post(
            "/v1/applications",
            json={"bundle_id": code},
            headers={**who["headers"], "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.get_json()
        names.append(r.get_json()["service_name"])
    assert names == ["甲一件事", "乙一件事"]
