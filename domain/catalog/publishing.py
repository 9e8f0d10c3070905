"""Publishing, suspending and resuming items and bundles.

Every change citizens can see bumps `catalog_revision` in the same transaction, which tells the
read models of every process to reload. Every change is audited with the operator.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import clock
from domain.catalog.bundles import form_conflicts
from domain.catalog.errors import (
    BundleFormConflict,
    BundleItemsNotPublished,
    BundleNotFound,
    InvalidTransition,
    NothingToPublish,
)
from domain.catalog.locks import lock_items, one_import_at_a_time
from domain.catalog.models import (
    STATUS_DRAFT,
    STATUS_PUBLISHED,
    STATUS_SUSPENDED,
    VERSION_DRAFT,
    VERSION_PUBLISHED,
    VERSION_RETIRED,
    Bundle,
    ServiceItem,
    ServiceItemVersion,
)
from domain.catalog.revision import bump_revision
from domain.catalog.summary import summarize
from domain.catalog.versions import content_hash, find_item, latest_versions
from domain.operators.audit_log import Actor, record


def publish_latest(session: Session, actor: Actor, code: str, now: Any, *, quiet: bool = False) -> bool:
    """Publish the item's newest version if it is a draft (else NothingToPublish, or False when
    `quiet`); the previous published version is retired. Neither commits nor bumps the revision."""
    item = find_item(session, code)
    latest = session.scalar(
        select(ServiceItemVersion).where(
            ServiceItemVersion.item_id == item.id, ServiceItemVersion.version == item.latest_version
        )
    )
    if latest is None or latest.state != VERSION_DRAFT:
        if quiet:
            return False
        raise NothingToPublish()
    if item.published_version is not None:
        session.execute(
            update(ServiceItemVersion)
            .where(ServiceItemVersion.item_id == item.id, ServiceItemVersion.state == VERSION_PUBLISHED)
            .values(state=VERSION_RETIRED)
        )
    latest.state, latest.published_at, latest.published_by = VERSION_PUBLISHED, now, actor.id
    item.published_version = latest.version
    item.published_summary = summarize(latest.document, version=latest.version)
    item.name = latest.document["name"]
    item.basic_code = latest.document["basic_code"]  # the listing shows the published version's
    if item.status == STATUS_DRAFT:
        item.status = STATUS_PUBLISHED
    item.updated_at = now
    record(
        session,
        actor,
        "catalog.item.publish",
        target_type="service_item",
        target_id=code,
        details={"version": latest.version},
    )
    return True


def published_bundle_conflicts(
    session: Session, forms: dict[str, dict[str, Any]], *, bundles: list[tuple[str, list[str]]] | None = None
) -> list[tuple[str, Any]]:
    """(bundle code, problem) for each published bundle naming an item of `forms` (code -> the
    form about to be published), or each of `bundles` ((code, item codes)), whose items would
    then define a group differently: its merged form keeps the first definition, so a field
    another item requires would not be asked. The other items count at their published version."""
    if bundles is None:
        bundles = [
            (b.code, list(b.published_document["items"]))
            for b in session.scalars(
                select(Bundle).where(Bundle.status == STATUS_PUBLISHED).order_by(Bundle.code)
            )
            if b.published_document and set(b.published_document["items"]) & set(forms)
        ]
    out: list[tuple[str, Any]] = []
    for bundle_code, codes in bundles:
        published = dict(
            session.execute(
                select(ServiceItem.code, ServiceItemVersion.document)
                .join(ServiceItemVersion, ServiceItemVersion.item_id == ServiceItem.id)
                .where(
                    ServiceItem.code.in_(codes), ServiceItemVersion.version == ServiceItem.published_version
                )
            ).all()
        )
        merged = {}
        for code in codes:
            form = forms[code] if code in forms else (published.get(code) or {}).get("form")
            if form:
                merged[code] = form
        out += [(bundle_code, problem) for problem in form_conflicts(merged)]
    return out


def publish_item(session: Session, actor: Actor, code: str) -> ServiceItem:
    """Publish the newest draft version; the previous published version is retired, not changed.
    After any import under way (the import lock first, as every catalog write takes it): an
    import that judged the version a draft would otherwise rewrite it once published. Refused
    (BundleFormConflict) when a published bundle naming the item would get conflicting groups."""
    one_import_at_a_time(session)
    find_item(session, code)  # locked while it is checked
    latest = latest_versions(session, [code]).get(code)
    if latest is not None and latest[1].state == VERSION_DRAFT and latest[1].document.get("form"):
        if conflicts := published_bundle_conflicts(session, {code: latest[1].document["form"]}):
            raise BundleFormConflict(conflicts=conflicts)
    publish_latest(session, actor, code, clock.now())
    bump_revision(session)
    session.commit()
    return find_item(session, code, lock=False)


def _set_status(
    session: Session, actor: Actor, row: ServiceItem | Bundle, kind: str, *, suspend: bool, reason: str
) -> None:
    """Suspend a published item or bundle (hidden, no new applications) or resume it."""
    wanted_from = STATUS_PUBLISHED if suspend else STATUS_SUSPENDED
    if row.status != wanted_from:
        raise InvalidTransition(status=row.status)
    row.status = STATUS_SUSPENDED if suspend else STATUS_PUBLISHED
    row.updated_at = clock.now()
    if isinstance(row, Bundle):
        row.updated_by = actor.id
    record(
        session,
        actor,
        f"catalog.{kind}.{'suspend' if suspend else 'resume'}",
        target_type="service_item" if kind == "item" else kind,
        target_id=row.code,
        details={"reason": reason},
    )
    bump_revision(session)
    session.commit()


def set_item_status(session: Session, actor: Actor, code: str, *, suspend: bool, reason: str) -> ServiceItem:
    one_import_at_a_time(session)  # as publish_item: never in the middle of an import
    item = find_item(session, code)
    _set_status(session, actor, item, "item", suspend=suspend, reason=reason)
    return item


def publish_bundle_content(session: Session, actor: Actor, bundle: Bundle, now: Any) -> bool:
    """Publish the bundle's newest content unless it is already the published one (False).
    Checks nothing about its items; neither commits nor bumps the revision."""
    if (
        bundle.published_document is not None
        and content_hash(bundle.published_document) == bundle.content_hash
    ):
        if bundle.status != STATUS_SUSPENDED:
            bundle.status = STATUS_PUBLISHED
        return False
    bundle.published_document = bundle.document
    bundle.version += 1
    if bundle.status == STATUS_DRAFT:
        bundle.status = STATUS_PUBLISHED
    bundle.updated_at, bundle.updated_by = now, actor.id
    record(
        session,
        actor,
        "catalog.bundle.publish",
        target_type="bundle",
        target_id=bundle.code,
        details={"version": bundle.version},
    )
    return True


def _bundle(session: Session, code: str) -> Bundle:
    bundle = session.scalar(select(Bundle).where(Bundle.code == code).with_for_update())
    if bundle is None:
        raise BundleNotFound()
    return bundle


def _unpublished_items(session: Session, codes: list[str]) -> list[dict[str, Any]]:
    """The items of `codes` a citizen could not start (draft, suspended or missing), in order."""
    rows = {
        item.code: (item, version)
        for item, version in latest_versions(session, list(dict.fromkeys(codes))).values()
    }
    out = []
    for code in codes:
        item, version = rows.get(code, (None, None))
        if item is not None and item.status == STATUS_PUBLISHED:
            continue
        out.append(
            {
                "code": code,
                "name": item.name if item else "",
                "name_en": (version.document.get("name_en") or "") if version else "",
                "status": item.status if item else "missing",
            }
        )
    return out


def publish_bundle(session: Session, actor: Actor, code: str) -> Bundle:
    """Publish a bundle's newest content; every item it names must be published (not a draft, not
    suspended), as an import with `"publish": true` requires, or citizens could not start it.
    The items are locked while they are checked, so one suspended meanwhile cannot slip under a
    bundle published at the same moment. Imports are kept out meanwhile too (they lock items and
    then bundles, this the bundle and then its items: the two could deadlock)."""
    one_import_at_a_time(session)
    bundle = _bundle(session, code)
    lock_items(session, bundle.document["items"])
    if unpublished := _unpublished_items(session, bundle.document["items"]):
        raise BundleItemsNotPublished(items=unpublished)
    if conflicts := published_bundle_conflicts(
        session, {}, bundles=[(bundle.code, bundle.document["items"])]
    ):
        raise BundleFormConflict(conflicts=conflicts)
    if not publish_bundle_content(session, actor, bundle, clock.now()):
        raise NothingToPublish()
    bump_revision(session)
    session.commit()
    return bundle


def set_bundle_status(session: Session, actor: Actor, code: str, *, suspend: bool, reason: str) -> Bundle:
    """Suspend a published bundle (always allowed) or resume a suspended one. A resume offers the
    published content to citizens again, so, as a publish, it needs every item that content names
    published, checked under the same locks (BundleItemsNotPublished otherwise)."""
    if not suspend:
        one_import_at_a_time(session)  # the same lock order as publish_bundle
    bundle = _bundle(session, code)
    if not suspend and bundle.status == STATUS_SUSPENDED and bundle.published_document is not None:
        codes = bundle.published_document["items"]
        lock_items(session, codes)
        if unpublished := _unpublished_items(session, codes):
            raise BundleItemsNotPublished(items=unpublished)
        if conflicts := published_bundle_conflicts(session, {}, bundles=[(bundle.code, codes)]):
            raise BundleFormConflict(conflicts=conflicts)
    _set_status(session, actor, bundle, "bundle", suspend=suspend, reason=reason)
    return bundle
