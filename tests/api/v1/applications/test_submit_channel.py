"""A draft resumes on any channel of the account, but is submitted only on a channel its item
offers (as it can only be begun on one)."""

from __future__ import annotations

from typing import Any

from domain.catalog.importing import import_catalog
from domain.operators.audit_log import CLI_ACTOR
from tests.api.v1.applications.conftest import create, get, jpeg, patch, relogin, submit, upload, verified
from tests.domain.catalog.factories import document, item


def test_a_draft_of_an_app_only_item_is_not_submitted_from_the_mini_program(
    app: Any, client: Any, db_session: Any, seeded: Any
) -> None:
    only_app = item(channels=["app", "hall"])
    report = import_catalog(db_session, CLI_ACTOR, document(only_app, publish=True), dry_run=False)
    assert report.ok, report.problems
    who = verified(app, 0)
    mini = relogin(app, who, channel="miniprogram")
    refused = create(client, mini, service_code=only_app["code"])
    assert refused.get_json()["error"]["code"] == "application.channel_not_offered"
    draft = create(client, who, service_code=only_app["code"]).get_json()  # begun in the app
    draft = patch(client, who, draft, {"reason": {"kind": "expired"}}).get_json()
    for material in ("old_card", "photo"):
        assert upload(client, who, draft["id"], material, jpeg()).status_code == 201
    draft = get(client, who, draft["id"]).get_json()
    resp = submit(client, mini, draft)  # resumed in the mini-program
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "application.channel_not_offered"
    assert resp.get_json()["error"]["details"]["channels"] == ["app", "hall"]
    assert get(client, who, draft["id"]).get_json()["status"] == "draft"  # nothing written
    assert submit(client, who, draft).status_code == 200  # from the app it goes
