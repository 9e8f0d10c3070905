"""A bundle's publish (by itself or by an import) or resume, and the suspend of one of its items,
at the same moment, run one after the other: the bundle is never offered over an item suspended
meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import db
from domain.catalog.errors import BundleItemsNotPublished
from domain.catalog.importing import import_catalog
from domain.catalog.models import STATUS_DRAFT, STATUS_SUSPENDED, Bundle
from domain.catalog.publishing import publish_bundle, publish_item, set_bundle_status
from domain.catalog.versions import find_item
from domain.operators.audit_log import Actor
from tests.domain.catalog.factories import bundle, document, item, marriage_item

ACTOR = Actor(type="operator", id="op-1")
WAIT = 1.5  # seconds: far more than an unblocked publish needs


def _published_items(db_session: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    card, marriage = item(), marriage_item()
    assert import_catalog(db_session, ACTOR, document(card, marriage), dry_run=False).ok
    publish_item(db_session, ACTOR, card["code"])
    publish_item(db_session, ACTOR, marriage["code"])
    return card, marriage


def _while_an_item_is_being_suspended(app: Any, code: str, action: Callable[[Any], Any]) -> tuple[dict, bool]:
    """Run `action(session)` on another thread while an operator's suspend of the item `code` is
    under way on another connection: it has locked the item's row and changed it, as
    set_item_status does, and commits after WAIT. Returns the action's outcome ("result" or
    "error") and whether the action finished before the suspend committed."""
    suspending = Session(db.engine)
    row = find_item(suspending, code)
    row.status = STATUS_SUSPENDED
    suspending.flush()

    outcome: dict[str, Any] = {}

    def run() -> None:
        with app.app_context():
            try:
                outcome["result"] = action(db.session())
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                db.remove()

    acting = threading.Thread(target=run, daemon=True)
    try:
        acting.start()
        acting.join(WAIT)
        finished_first = not acting.is_alive()  # it should be waiting for the item's row
        suspending.commit()
    finally:
        suspending.close()
    acting.join(30)
    assert not acting.is_alive()
    return outcome, finished_first


def _stored_bundle() -> Bundle | None:
    return db.session().scalar(select(Bundle).where(Bundle.code == "YJS-TEST"))


def test_a_bundle_is_not_published_over_an_item_suspended_at_the_same_moment(
    app: Any, db_session: Any
) -> None:
    card, marriage = _published_items(db_session)
    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])])
    assert import_catalog(db_session, ACTOR, doc, dry_run=False).ok  # the bundle, a draft
    db_session.close()

    outcome, finished_first = _while_an_item_is_being_suspended(
        app, marriage["code"], lambda session: publish_bundle(session, ACTOR, "YJS-TEST").status
    )

    assert isinstance(outcome.get("error"), BundleItemsNotPublished), outcome
    assert [i["status"] for i in outcome["error"].details["items"]] == [STATUS_SUSPENDED]
    assert not finished_first
    stored = _stored_bundle()
    assert stored.status == STATUS_DRAFT and stored.published_document is None


def test_a_bundle_is_not_resumed_over_an_item_suspended_at_the_same_moment(app: Any, db_session: Any) -> None:
    card, marriage = _published_items(db_session)
    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])], publish=True)
    assert import_catalog(db_session, ACTOR, doc, dry_run=False).ok
    set_bundle_status(db_session, ACTOR, "YJS-TEST", suspend=True, reason="系统升级")
    db_session.close()

    outcome, finished_first = _while_an_item_is_being_suspended(
        app,
        marriage["code"],
        lambda session: set_bundle_status(session, ACTOR, "YJS-TEST", suspend=False, reason="恢复").status,
    )

    assert isinstance(outcome.get("error"), BundleItemsNotPublished), outcome
    assert [(i["code"], i["status"]) for i in outcome["error"].details["items"]] == [
        (marriage["code"], STATUS_SUSPENDED)
    ]
    assert not finished_first
    assert _stored_bundle().status == STATUS_SUSPENDED


@pytest.mark.parametrize("with_items", [False, True], ids=["bundle-only", "with-its-items"])
def test_an_import_does_not_publish_a_bundle_over_an_item_suspended_at_the_same_moment(
    app: Any, db_session: Any, with_items: bool
) -> None:
    card, marriage = _published_items(db_session)
    db_session.close()
    items = (card, marriage) if with_items else ()
    doc = document(*items, bundles=[bundle([card["code"], marriage["code"]])], publish=True)

    outcome, finished_first = _while_an_item_is_being_suspended(
        app, marriage["code"], lambda session: import_catalog(session, ACTOR, doc, dry_run=False)
    )

    assert "result" in outcome, outcome
    problems = [(p.path, p.code) for p in outcome["result"].problems]
    assert problems == [("bundles[0].items[1]", "item_suspended")]
    assert not finished_first
    assert _stored_bundle() is None  # nothing written
