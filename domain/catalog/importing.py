"""Catalog import: a whole document (reference lists, items, bundles) is validated first and
written all or nothing, or only reported on (dry run). With `"publish": true` it also publishes
what it brings.

Every change citizens can see bumps `catalog_revision` in the same transaction, which tells the
read models of every process to reload. Every change is audited with the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.errors import Text
from domain.catalog.bundles import form_conflicts, normalize_bundle
from domain.catalog.item_document import References, normalize_item
from domain.catalog.locks import lock_items, one_import_at_a_time
from domain.catalog.models import (
    REFERENCE_MODELS,
    STATUS_DRAFT,
    STATUS_PUBLISHED,
    STATUS_SUSPENDED,
    VERSION_DRAFT,
    Bundle,
    ServiceItem,
    ServiceItemVersion,
)
from domain.catalog.problems import Problem, Problems, join
from domain.catalog.publishing import publish_bundle_content, publish_latest, published_bundle_conflicts
from domain.catalog.reader import Reader
from domain.catalog.reference import LISTS, normalize_reference
from domain.catalog.revision import bump_revision
from domain.catalog.versions import content_hash, latest_versions
from domain.operators.audit_log import Actor, record

MAX_ITEMS_PER_IMPORT = 10_000


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


def _references(session: Session, imported: dict[str, list[dict[str, Any]]]) -> References:
    def known(name: str) -> frozenset[str]:
        model = REFERENCE_MODELS[name]
        return frozenset(session.scalars(select(model.code))) | {row["code"] for row in imported[name]}

    return References(known("departments"), known("categories"), known("ecert_types"))


def _imported_twice(problems: Problems, where: str, code: str) -> None:
    problems.add(join(where, "code"), "duplicate", Text(f"'{code}' is imported twice", f"'{code}' 重复导入"))


def validate_import(
    session: Session, document: Any, *, for_write: bool = False
) -> tuple[ImportReport, dict[str, Any]]:
    """Check a whole import document; nothing is written. Returns the report and normalised parts.
    `for_write`: the import is then written in this transaction, so the items a bundle it
    publishes needs are row-locked while they are checked."""
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
            _imported_twice(problems, join("items", i), doc["code"])
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
            _imported_twice(problems, join("bundles", i), doc["code"])
            continue
        forms = _bundle_forms(session, doc["items"], items)
        for conflict in form_conflicts(forms):
            problems.subject = doc["code"]
            problems.add(join(join("bundles", i), "items"), "form_conflict", conflict)
        bundles[doc["code"]] = doc
        places[doc["code"]] = i
    publish = top.boolean("publish")
    if publish:
        _check_bundle_items_published(session, problems, bundles, items, places, lock=for_write)
        # Published bundles this import leaves as they are get these items' new forms beside
        # their other items' published ones.
        new_forms = {code: doc["form"] for code, doc in items.items() if doc.get("form")}
        for code, problem in published_bundle_conflicts(session, new_forms):
            if code not in bundles:
                problems.subject = code
                problems.add(f"bundle {code}", "form_conflict", problem)
    _check_stored_bundles(session, problems, items, skip=set(bundles))
    if not (
        top.raw("items", required=False) or top.raw("bundles", required=False) or any(reference.values())
    ):
        problems.add("$", "required", Text("the document imports nothing", "文档中没有任何要导入的内容"))
    report = ImportReport(problems=problems.found)
    report.reference = {name: len(rows) for name, rows in reference.items()}
    latest = latest_versions(session, list(items))
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
    *,
    lock: bool,
) -> None:
    """A bundle published in this import needs every item published: imported ones will be,
    except a suspended one (publishing a new version leaves an item suspended). A bundle already
    published with this very content is left as it is (citizens are not offered it while an item
    is suspended), so a routine re-import of the whole catalog still goes through.
    With `lock`, the items are row-locked before they are read, as publish_bundle does, so one
    suspended at the same moment is seen suspended, never missed."""
    needed = {code for doc in bundles.values() for code in doc["items"]}
    if lock and needed:
        lock_items(session, list(needed))
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
    stored = latest_versions(session, [c for c in codes if c not in imported])
    for code in codes:
        doc = imported.get(code) or (stored[code][1].document if code in stored else None)
        if doc and doc.get("form"):
            forms[code] = doc["form"]
    return forms


def import_catalog(session: Session, actor: Actor, document: Any, *, dry_run: bool) -> ImportReport:
    """Validate and, unless `dry_run` or any problem was found, write the whole document."""
    if not dry_run:
        one_import_at_a_time(session)
    report, parts = validate_import(session, document, for_write=not dry_run)
    report.dry_run = dry_run
    report.published = parts["publish"]
    if dry_run or not report.ok:
        session.rollback()  # nothing written; ends the import lock
        return report
    now = clock.now()
    visible = False
    references_changed = 0
    for name in LISTS:
        model = REFERENCE_MODELS[name]
        for row in parts["reference"][name]:
            current = session.get(model, row["code"])
            if current is None or any(getattr(current, k) != v for k, v in row.items()):
                # Citizens read these names (the handling department, a category, a certificate
                # type): who changed which, and from what, is audited as item changes are.
                was = {k: None if current is None else getattr(current, k) for k in row}
                changed = {k: [was[k], v] for k, v in row.items() if current is None or was[k] != v}
                record(
                    session, actor, f"catalog.reference.{'created' if current is None else 'updated'}",
                    target_type=name, target_id=row["code"], details={"changed": changed},
                )  # fmt: skip
                session.merge(model(**row))
                references_changed += 1
                visible = True
    session.flush()
    latest = latest_versions(session, list(parts["items"]))
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
            if publish_latest(session, actor, code, now, quiet=True):
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
        if parts["publish"] and publish_bundle_content(session, actor, bundle, now):
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
            "reference_changed": references_changed,
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
