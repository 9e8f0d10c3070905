"""The consent text names the handling department as the catalog names it now: a department
renamed after the process built an item's form must not keep its old name in the consent (and its
version) for the life of the process, or workers disagree and submit refuses a consent another
worker showed."""

from __future__ import annotations

from domain.catalog.importing import import_catalog
from domain.operators.audit_log import CLI_ACTOR
from tests.api.v1.applications.conftest import SS_CARD, create, get, submit

RENAMED = {"code": "human_resources", "name": "人力资源社会保障局", "name_en": "Human Resources Bureau"}


def _rename_department(db_session) -> None:
    document = {
        "reference": {"departments": [RENAMED], "categories": [], "ecert_types": []},
        "items": [],
        "bundles": [],
        "publish": False,
    }
    report = import_catalog(db_session, CLI_ACTOR, document, dry_run=False)
    assert report.ok, report.problems


def test_consent_follows_a_renamed_department(client, zhang, db_session):
    created = create(client, zhang, service_code=SS_CARD).get_json()
    before = created["consent"]
    assert "承办部门（人力资源和社会保障）" in before["text"]

    _rename_department(db_session)

    now = get(client, zhang, created["id"]).get_json()["consent"]
    assert "承办部门（人力资源社会保障局）" in now["text"]
    assert now["text_version"] != before["text_version"]
    # The consent shown before the rename names a department that no longer exists: refused.
    stale = submit(client, zhang, created)
    assert stale.status_code == 422
    assert "consent" in stale.get_json()["error"]["fields"]
    # The consent shown now is the one submit checks.
    fresh = submit(client, zhang, created | {"consent": now})
    assert fresh.status_code == 422  # the draft is still incomplete...
    assert "consent" not in fresh.get_json()["error"]["fields"]  # ...but its consent holds


def test_the_data_sharing_consent_follows_a_renamed_department(client, zhang, db_session):
    created = create(client, zhang, service_code=SS_CARD).get_json()
    assert "人力资源和社会保障" in created["data_sharing"]["text"]
    _rename_department(db_session)
    now = get(client, zhang, created["id"]).get_json()
    assert "承办部门（人力资源社会保障局）" in now["consent"]["text"]
    assert "人力资源社会保障局" in now["data_sharing"]["text"], now["data_sharing"]["text"]


def test_the_data_sharing_consent_of_a_bundle_names_that_bundle(client, zhang, db_session):
    """Two bundles of the same items: each consent names the bundle being applied for."""
    import json

    from cli.catalog import SEED_DIR

    bundles = json.loads((SEED_DIR / "bundles.json").read_text())["bundles"]
    newborn = next(b for b in bundles if b["code"] == "YJS-NEWBORN")
    twins = newborn | {"code": "YJS-TWINS", "name": "双胞胎出生一件事", "name_en": "Twins"}
    doc = {
        "reference": {"departments": [], "categories": [], "ecert_types": []},
        "items": [], "bundles": [twins], "publish": True,
    }  # fmt: skip
    report = import_catalog(db_session, CLI_ACTOR, doc, dry_run=False)
    assert report.ok, report.problems
    first = create(client, zhang, bundle_id="YJS-NEWBORN").get_json()
    assert "新生儿出生一件事" in first["data_sharing"]["text"]
    second = create(client, zhang, bundle_id="YJS-TWINS").get_json()
    assert "双胞胎出生一件事" in second["consent"]["text"]
    assert "双胞胎出生一件事" in second["data_sharing"]["text"], second["data_sharing"]["text"]
