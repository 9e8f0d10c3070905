"""Catalog writes: import (all-or-nothing, with dry run), publish, suspend, resume; version reads.

Every change citizens can see bumps `catalog_revision` in the same transaction, which tells the
read models of every process to reload. Every change is audited with the operator.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import clock
from core.db import take_write_lock
from core.errors import Text
from domain.catalog.bundles import form_conflicts, normalize_bundle
from domain.catalog.errors import (
    BundleItemsNotPublished,
    BundleNotFound,
    InvalidTransition,
    ItemNotFound,
    ItemSuspended,
    NothingToPublish,
    VersionNotFound,
)
from domain.catalog.item_document import References, normalize_item
from domain.catalog.models import (
    STATUS_DRAFT,
    STATUS_PUBLISHED,
    STATUS_SUSPENDED,
    VERSION_DRAFT,
    VERSION_PUBLISHED,
    VERSION_RETIRED,
    Bundle,
    CatalogRevision,
    Category,
    Department,
    EcertType,
    ServiceItem,
    ServiceItemVersion,
)
from domain.catalog.problems import Problem, Problems, join
from domain.catalog.reader import Reader
from domain.catalog.reference import LISTS, normalize_reference
from domain.catalog.summary import summarize
from domain.operators.audit_log import Actor, record

MAX_ITEMS_PER_IMPORT = 10_000
_REFERENCE_MODELS = {"departments": Department, "categories": Category, "ecert_types": EcertType}


def content_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class ImportReport:
    problems: list[Problem] = field(default_factory=list)
    # code -> "created" / "new_version" / "draft_updated" / "unchanged" (+ "published")
    items: dict[str, str] = field(default_factory=dict)
    bundles: dict[str, str] = field(default_factory=dict)
    reference: dict[str, int] = field(default_factory=dict)
    dry_run: bool = True
    published: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def bump_revision(session: Session) -> None:
    """Tell every read model the catalog changed (row-locked, so concurrent writers serialise)."""
    now = clock.now()
    done = session.execute(
        update(CatalogRevision)
        .where(CatalogRevision.id == 1)
        .values(revision=CatalogRevision.revision + 1, updated_at=now)
    ).rowcount
    if not done:
        session.add(CatalogRevision(id=1, revision=1, updated_at=now))
        session.flush()


def current_revision(session: Session) -> int:
    return session.execute(select(CatalogRevision.revision).where(CatalogRevision.id == 1)).scalar() or 0


def _references(session: Session, imported: dict[str, list[dict[str, Any]]]) -> References:
    def known(name: str) -> frozenset[str]:
        model = _REFERENCE_MODELS[name]
        return frozenset(session.scalars(select(model.code))) | {row["code"] for row in imported[name]}

    return References(known("departments"), known("categories"), known("ecert_types"))


def _latest_versions(session: Session, codes: list[str]) -> dict[str, tuple[ServiceItem, ServiceItemVersion]]:
    out: dict[str, tuple[ServiceItem, ServiceItemVersion]] = {}
    for i in range(0, len(codes), 500):
        rows = session.execute(
            select(ServiceItem, ServiceItemVersion)
            .join(ServiceItemVersion, ServiceItemVersion.item_id == ServiceItem.id)
            .where(ServiceItem.code.in_(codes[i : i + 500]))
            .where(ServiceItemVersion.version == ServiceItem.latest_version)
        ).all()
        out.update({item.code: (item, version) for item, version in rows})
    return out


def validate_import(session: Session, document: Any) -> tuple[ImportReport, dict[str, Any]]:
    """Check a whole import document; nothing is written. Returns the report and normalised parts."""
    problems = Problems()
    top = Reader(problems, "", document, {"reference", "items", "bundles", "publish"})
    reference = normalize_reference(problems, "reference", top.raw("reference", required=False) or {})
    refs = _references(session, reference)
    items: dict[str, dict[str, Any]] = {}
    for i, value in enumerate(top.array("items", required=False, max_items=MAX_ITEMS_PER_IMPORT)):
        doc = normalize_item(problems, join("items", i), value, refs)
        if doc is None:
            continue
        if doc["code"] in items:
            problems.add(
                join(join("items", i), "code"),
                "duplicate",
                Text(f"'{doc['code']}' is imported twice", f"'{doc['code']}' 重复导入"),
            )
            continue
        items[doc["code"]] = doc
    existing_codes = set(session.scalars(select(ServiceItem.code)))
    bundles: dict[str, dict[str, Any]] = {}
    places: dict[str, int] = {}  # bundle code -> its index in the document, for problem paths
    for i, value in enumerate(top.array("bundles", required=False, max_items=1000)):
        doc = normalize_bundle(problems, join("bundles", i), value, refs, existing_codes | set(items))
        if doc is None:
            continue
        if doc["code"] in bundles:
            problems.add(
                join(join("bundles", i), "code"),
                "duplicate",
                Text(f"'{doc['code']}' is imported twice", f"'{doc['code']}' 重复导入"),
            )
            continue
        forms = _bundle_forms(session, doc["items"], items)
        for conflict in form_conflicts(forms):
            problems.subject = doc["code"]
            problems.add(join(join("bundles", i), "items"), "form_conflict", conflict)
        bundles[doc["code"]] = doc
        places[doc["code"]] = i
    publish = top.boolean("publish")
    if publish:
        _check_bundle_items_published(session, problems, bundles, items, places)
    _check_stored_bundles(session, problems, items, skip=set(bundles))
    if not (
        top.raw("items", required=False) or top.raw("bundles", required=False) or any(reference.values())
    ):
        problems.add("$", "required", Text("the document imports nothing", "文档中没有任何要导入的内容"))
    report = ImportReport(problems=problems.found)
    report.reference = {name: len(rows) for name, rows in reference.items()}
    latest = _latest_versions(session, list(items))
    for code, doc in items.items():
        if code not in latest:
            report.items[code] = "created"
        elif latest[code][1].content_hash == content_hash(doc):
            report.items[code] = "unchanged"
        else:
            report.items[code] = "draft_updated" if latest[code][1].state == VERSION_DRAFT else "new_version"
    existing_bundles = {
        b.code: b for b in session.scalars(select(Bundle).where(Bundle.code.in_(list(bundles))))
    }
    for code, doc in bundles.items():
        if code not in existing_bundles:
            report.bundles[code] = "created"
        else:
            same = existing_bundles[code].content_hash == content_hash(doc)
            report.bundles[code] = "unchanged" if same else "updated"
    return report, {"reference": reference, "items": items, "bundles": bundles, "publish": publish}


def _check_bundle_items_published(
    session: Session,
    problems: Problems,
    bundles: dict[str, dict[str, Any]],
    items: dict[str, dict[str, Any]],
    places: dict[str, int],
) -> None:
    """A bundle published in this import needs every item published: imported ones will be,
    except a suspended one (publishing a new version leaves an item suspended). A bundle already
    published with this very content is left as it is (citizens are not offered it while an item
    is suspended), so a routine re-import of the whole catalog still goes through."""
    needed = {code for doc in bundles.values() for code in doc["items"]}
    status = dict(
        session.execute(
            select(ServiceItem.code, ServiceItem.status).where(ServiceItem.code.in_(needed))
        ).all()
    )
    unchanged = {
        b.code
        for b in session.scalars(select(Bundle).where(Bundle.code.in_(list(bundles))))
        if b.published_document is not None
        and content_hash(b.published_document) == content_hash(bundles[b.code])
    }
    for code, doc in bundles.items():
        if code in unchanged:
            continue
        i = places[code]  # where the bundle stands in the document (invalid ones before it count)
        problems.subject = code
        for j, item_code in enumerate(doc["items"]):
            if status.get(item_code) == STATUS_SUSPENDED:
                problems.add(
                    f"bundles[{i}].items[{j}]",
                    "item_suspended",
                    Text(f"'{item_code}' is suspended", f"事项 '{item_code}' 已暂停办理"),
                )
            elif item_code not in items and status.get(item_code) != STATUS_PUBLISHED:
                problems.add(
                    f"bundles[{i}].items[{j}]",
                    "unknown_item",
                    Text(f"'{item_code}' is not published", f"事项 '{item_code}' 尚未发布"),
                )


def _check_stored_bundles(
    session: Session, problems: Problems, items: dict[str, dict[str, Any]], *, skip: set[str]
) -> None:
    """An imported item must not break the merged form of a bundle already in the catalog."""
    if not items:
        return
    for bundle in session.scalars(select(Bundle).order_by(Bundle.code)):
        if bundle.code in skip or not set(bundle.document["items"]) & set(items):
            continue
        problems.subject = bundle.code
        for conflict in form_conflicts(_bundle_forms(session, bundle.document["items"], items)):
            problems.add(f"bundle {bundle.code}", "form_conflict", conflict)


def _bundle_forms(
    session: Session, codes: list[str], imported: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The forms a bundle's items will have: imported ones, else their newest version."""
    forms: dict[str, dict[str, Any]] = {}
    stored = _latest_versions(session, [c for c in codes if c not in imported])
    for code in codes:
        doc = imported.get(code) or (stored[code][1].document if code in stored else None)
        if doc and doc.get("form"):
            forms[code] = doc["form"]
    return forms


def _one_import_at_a_time(session: Session) -> None:
    """Imports are judged and written one after another (PostgreSQL: a transaction-scoped
    advisory lock; SQLite: its one write lock). Two editors importing the same new item at once
    both judged it new, and the second failed on the item's unique code with a 500; now the
    second is judged after the first has committed (unchanged, or a new version)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_IMPORT_LOCK)))
    else:
        take_write_lock(session, CatalogRevision.__table__, CatalogRevision.id == 1)


# The advisory lock's key: a fixed 63-bit number derived from its name.
_IMPORT_LOCK = int.from_bytes(hashlib.sha256(b"yiwang:catalog-import").digest()[:8], "big") >> 1


def import_catalog(session: Session, actor: Actor, document: Any, *, dry_run: bool) -> ImportReport:
    """Validate and, unless `dry_run` or any problem was found, write the whole document."""
    if not dry_run:
        _one_import_at_a_time(session)
    report, parts = validate_import(session, document)
    report.dry_run = dry_run
    report.published = parts["publish"]
    if dry_run or not report.ok:
        session.rollback()  # nothing written; ends the import lock
        return report
    now = clock.now()
    visible = False
    for name in LISTS:
        model = _REFERENCE_MODELS[name]
        for row in parts["reference"][name]:
            current = session.get(model, row["code"])
            if current is None or any(getattr(current, k) != v for k, v in row.items()):
                session.merge(model(**row))
                visible = True
    session.flush()
    latest = _latest_versions(session, list(parts["items"]))
    before = {code: dict(version.document) for code, (_, version) in latest.items()}
    for code, doc in parts["items"].items():
        change = report.items[code]
        if change == "created":
            item = ServiceItem(
                code=code,
                basic_code=doc["basic_code"],
                name=doc["name"],
                status=STATUS_DRAFT,
                latest_version=0,
                created_at=now,
                updated_at=now,
            )
            session.add(item)
            session.flush()
            _add_version(session, item, doc, actor, now)
        elif change == "new_version":
            _add_version(session, latest[code][0], doc, actor, now)
        elif change == "draft_updated":
            item, version = latest[code]
            version.document, version.content_hash = doc, content_hash(doc)
            version.created_at, version.created_by = now, actor.id
            item.updated_at = now
        if change != "unchanged":
            record(
                session,
                actor,
                f"catalog.item.{change}",
                target_type="service_item",
                target_id=code,
                details={"name": doc["name"], "changed_fields": _changed_fields(before.get(code), doc)},
            )
    session.flush()
    if parts["publish"]:
        for code in parts["items"]:
            if _publish_latest(session, actor, code, now, quiet=True):
                report.items[code] += "+published"
                visible = True
    for code, doc in parts["bundles"].items():
        bundle = session.scalar(select(Bundle).where(Bundle.code == code))
        if bundle is None:
            bundle = Bundle(
                code=code,
                name=doc["name"],
                status=STATUS_DRAFT,
                version=0,
                document=doc,
                content_hash=content_hash(doc),
                updated_at=now,
                updated_by=actor.id,
            )
            session.add(bundle)
        elif report.bundles[code] == "updated":
            bundle.document, bundle.content_hash, bundle.name = doc, content_hash(doc), doc["name"]
            bundle.updated_at, bundle.updated_by = now, actor.id
        if report.bundles[code] != "unchanged":
            record(
                session, actor, f"catalog.bundle.{report.bundles[code]}", target_type="bundle", target_id=code
            )
        session.flush()
        if parts["publish"] and _publish_bundle(session, actor, bundle, now):
            report.bundles[code] += "+published"
            visible = True
    record(
        session,
        actor,
        "catalog.import",
        details={
            "items": len(parts["items"]),
            "bundles": len(parts["bundles"]),
            "publish": parts["publish"],
            "changed": sum(1 for c in report.items.values() if c != "unchanged"),
        },
    )
    if visible:
        bump_revision(session)
    session.commit()
    return report


def _changed_fields(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Top-level fields that differ (for the audit trail: who changed what)."""
    if old is None:
        return sorted(new)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _add_version(session: Session, item: ServiceItem, doc: dict[str, Any], actor: Actor, now: Any) -> None:
    item.latest_version += 1
    item.updated_at = now
    session.add(
        ServiceItemVersion(
            item_id=item.id,
            version=item.latest_version,
            state=VERSION_DRAFT,
            document=doc,
            content_hash=content_hash(doc),
            created_at=now,
            created_by=actor.id,
        )
    )


def _item(session: Session, code: str, *, lock: bool = True) -> ServiceItem:
    query = select(ServiceItem).where(ServiceItem.code == code)
    item = session.scalar(query.with_for_update() if lock else query)
    if item is None:
        raise ItemNotFound()
    return item


def _publish_latest(session: Session, actor: Actor, code: str, now: Any, *, quiet: bool = False) -> bool:
    item = _item(session, code)
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


def publish_item(session: Session, actor: Actor, code: str) -> ServiceItem:
    """Publish the newest draft version; the previous published version is retired, not changed."""
    _publish_latest(session, actor, code, clock.now())
    bump_revision(session)
    session.commit()
    return _item(session, code, lock=False)


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
    item = _item(session, code)
    _set_status(session, actor, item, "item", suspend=suspend, reason=reason)
    return item


def _publish_bundle(session: Session, actor: Actor, bundle: Bundle, now: Any) -> bool:
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
        for item, version in _latest_versions(session, list(dict.fromkeys(codes))).values()
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


def _lock_items(session: Session, codes: list[str]) -> None:
    """Lock the rows of the items `codes` until the transaction ends, in code order (two bundles
    sharing items lock them in the same order), and read them afresh. A suspend locks its item
    row first (set_item_status), so a bundle's publish and the suspend of one of its items run one
    after the other: the publish waits for the suspend and sees the item suspended, or the suspend
    waits for the publish (PostgreSQL: SELECT ... FOR UPDATE; SQLite: its one write lock)."""
    where = ServiceItem.code.in_(sorted(set(codes)))
    take_write_lock(session, ServiceItem.__table__, where)
    session.scalars(
        select(ServiceItem)
        .where(where)
        .order_by(ServiceItem.code)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def publish_bundle(session: Session, actor: Actor, code: str) -> Bundle:
    """Publish a bundle's newest content; every item it names must be published (not a draft, not
    suspended), as an import with `"publish": true` requires, or citizens could not start it.
    The items are locked while they are checked, so one suspended meanwhile cannot slip under a
    bundle published at the same moment. Imports are kept out meanwhile too (they lock items and
    then bundles, this the bundle and then its items: the two could deadlock)."""
    _one_import_at_a_time(session)
    bundle = _bundle(session, code)
    _lock_items(session, bundle.document["items"])
    if unpublished := _unpublished_items(session, bundle.document["items"]):
        raise BundleItemsNotPublished(items=unpublished)
    if not _publish_bundle(session, actor, bundle, clock.now()):
        raise NothingToPublish()
    bump_revision(session)
    session.commit()
    return bundle


def set_bundle_status(session: Session, actor: Actor, code: str, *, suspend: bool, reason: str) -> Bundle:
    bundle = _bundle(session, code)
    _set_status(session, actor, bundle, "bundle", suspend=suspend, reason=reason)
    return bundle


# --- versions, for applications -------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """The item version an application started on; it keeps reading this version."""

    code: str
    version: int


def pin_current(session: Session, code: str) -> Pin:
    """Pin the published version of an item for a new application (refused when suspended)."""
    item = session.scalar(select(ServiceItem).where(ServiceItem.code == code))
    if item is None or item.published_version is None:
        raise ItemNotFound()
    if item.status == STATUS_SUSPENDED:
        raise ItemSuspended()
    return Pin(code=code, version=item.published_version)


def version_document(session: Session, code: str, version: int) -> dict[str, Any]:
    """A version that was published (current or retired); drafts are never shown to citizens."""
    row = session.execute(
        select(ServiceItemVersion.document, ServiceItemVersion.state)
        .join(ServiceItem, ServiceItem.id == ServiceItemVersion.item_id)
        .where(ServiceItem.code == code, ServiceItemVersion.version == version)
    ).first()
    if row is None or row.state == VERSION_DRAFT:
        raise VersionNotFound()
    return row.document


def item_versions(session: Session, code: str) -> list[ServiceItemVersion]:
    item = _item(session, code, lock=False)
    return list(
        session.scalars(
            select(ServiceItemVersion)
            .where(ServiceItemVersion.item_id == item.id)
            .order_by(ServiceItemVersion.version.desc())
        )
    )


def admin_item(session: Session, code: str) -> tuple[ServiceItem, ServiceItemVersion]:
    item = _item(session, code, lock=False)
    latest = session.scalar(
        select(ServiceItemVersion).where(
            ServiceItemVersion.item_id == item.id, ServiceItemVersion.version == item.latest_version
        )
    )
    assert latest is not None
    return item, latest


def list_admin_items(
    session: Session, *, status: str | None = None
) -> list[tuple[ServiceItem, dict[str, Any]]]:
    """Every item with its newest version's document (for lists, CSV and burden)."""
    query = (
        select(ServiceItem, ServiceItemVersion.document)
        .join(ServiceItemVersion, ServiceItemVersion.item_id == ServiceItem.id)
        .where(ServiceItemVersion.version == ServiceItem.latest_version)
        .order_by(ServiceItem.code)
    )
    if status:
        query = query.where(ServiceItem.status == status)
    return [(item, doc) for item, doc in session.execute(query).all()]


def export_catalog(session: Session, *, published_only: bool = False) -> dict[str, Any]:
    """The whole catalog in the import format (newest versions, or the published ones)."""
    reference: dict[str, list[dict[str, Any]]] = {}
    for name, model in _REFERENCE_MODELS.items():
        columns = [c.name for c in model.__table__.columns]
        reference[name] = [
            {c: getattr(row, c) for c in columns}
            for row in session.scalars(select(model).order_by(model.code))
        ]
    version_column = ServiceItem.published_version if published_only else ServiceItem.latest_version
    query = (
        select(ServiceItemVersion.document)
        .join(ServiceItem, ServiceItem.id == ServiceItemVersion.item_id)
        .where(ServiceItemVersion.version == version_column)
        .order_by(ServiceItem.code)
    )
    if published_only:  # what citizens see: not suspended items (they keep their published version)
        query = query.where(ServiceItem.status == STATUS_PUBLISHED)
    items = list(session.scalars(query).all())
    bundle_query = select(Bundle).order_by(Bundle.code)
    if published_only:
        bundle_query = bundle_query.where(Bundle.status == STATUS_PUBLISHED)
    bundles = [
        (b.published_document if published_only else b.document) for b in session.scalars(bundle_query)
    ]
    if published_only:
        # A bundle citizens cannot start (an item suspended) is not offered to them, and an
        # export naming items it does not hold would not import into an empty catalog.
        exported = {doc["code"] for doc in items}
        bundles = [b for b in bundles if b and set(b["items"]) <= exported]
    return {"reference": reference, "items": items, "bundles": [b for b in bundles if b]}
