"""A bundle's publish and the suspend of one of its items, at the same moment, run one after
the other: the bundle is never published over an item suspended meanwhile."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import db
from domain.catalog import service as catalog
from domain.catalog.errors import BundleItemsNotPublished
from domain.catalog.models import STATUS_DRAFT, STATUS_SUSPENDED, Bundle
from domain.operators.audit_log import Actor
from tests.domain.catalog.factories import bundle, document, item, marriage_item

ACTOR = Actor(type="operator", id="op-1")
WAIT = 1.5  # seconds: far more than an unblocked publish needs


def test_a_bundle_is_not_published_over_an_item_suspended_at_the_same_moment(
    app: Any, db_session: Any
) -> None:
    card, marriage = item(), marriage_item()
    assert catalog.import_catalog(db_session, ACTOR, document(card, marriage), dry_run=False).ok
    catalog.publish_item(db_session, ACTOR, card["code"])
    catalog.publish_item(db_session, ACTOR, marriage["code"])
    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])])
    assert catalog.import_catalog(db_session, ACTOR, doc, dry_run=False).ok  # the bundle, a draft
    db_session.close()

    # An operator's suspend of the marriage item is under way on another connection: it has
    # locked the item's row and changed it, as set_item_status does, and not committed yet.
    suspending = Session(db.engine)
    row = catalog._item(suspending, marriage["code"])
    row.status = STATUS_SUSPENDED
    suspending.flush()

    outcome: dict[str, Any] = {}

    def publish() -> None:
        with app.app_context():
            try:
                outcome["bundle"] = catalog.publish_bundle(db.session(), ACTOR, "YJS-TEST").status
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                db.remove()

    publishing = threading.Thread(target=publish, daemon=True)
    try:
        publishing.start()
        publishing.join(WAIT)
        finished_first = not publishing.is_alive()  # it should be waiting for the item's row
        suspending.commit()
    finally:
        suspending.close()
    publishing.join(30)
    assert not publishing.is_alive()

    assert isinstance(outcome.get("error"), BundleItemsNotPublished), outcome
    assert [i["status"] for i in outcome["error"].details["items"]] == [STATUS_SUSPENDED]
    assert not finished_first
    stored = db.session().scalar(select(Bundle).where(Bundle.code == "YJS-TEST"))
    assert stored.status == STATUS_DRAFT and stored.published_document is None
