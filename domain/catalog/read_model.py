"""What phones read: the published catalog, held in each process and reloaded when it changes.

The read model keeps compact entries of every published item (not whole documents), the search
index, bundles and reference lists. Details are rendered to JSON bytes once per version and
kept in a bounded cache with their ETag and a gzip copy, so a detail request or its 304 does no
database work. Every `refresh_seconds` the model reads `catalog_revision` (one tiny query) and
rebuilds when a writer bumped it.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.memory import trim_heap
from domain.catalog import codes
from domain.catalog.bundles import merge_forms
from domain.catalog.errors import BundleNotFound, ItemNotFound
from domain.catalog.models import (
    STATUS_PUBLISHED,
    Bundle,
    CatalogRevision,
    Category,
    Department,
    EcertType,
    ServiceItem,
)
from domain.catalog.search import Doc, SearchIndex, doc_terms, terms_version
from domain.catalog.sources import PREFILL_SOURCES, SHARED_DATASETS
from domain.catalog.summary import burden
from domain.catalog.versions import version_document

log = logging.getLogger(__name__)

# What lists, filters and compact entries read of a summary; the rest is dropped on load.
_ENTRY_KEYS = (
    "code", "name", "name_en", "department", "implementing_body", "categories", "region", "visits",
    "promised_limit", "charged", "min_level", "version",
)  # fmt: skip


# Summaries decoded per query. What a batch decodes and drops is interleaved in memory with the
# entries kept from it, and the fragments stay resident: 500 per batch left each worker 5 MB
# larger than 100 does (5,000 items); below 100 the gain is under 1 MB for more round trips.
_BATCH = 100
_FREEZE_FROM = 1000


def _published_summaries(session: Session) -> Iterator[dict[str, Any]]:
    """Published summaries in keyset-paged batches: the driver parses JSON for a whole result at
    once, so one query for 5,000 rows would hold every full summary in memory together. (No
    server-side cursor: the reader session autocommits, and PostgreSQL declares cursors only
    inside a transaction.)"""
    last = ""
    while True:
        rows = session.execute(
            select(ServiceItem.code, ServiceItem.published_summary)
            .where(ServiceItem.status == STATUS_PUBLISHED, ServiceItem.code > last)
            .order_by(ServiceItem.code)
            .limit(_BATCH)
        ).all()
        for row in rows:
            if row.published_summary:
                yield row.published_summary
        if len(rows) < _BATCH:
            return
        last = rows[-1].code


def _slim(summary: dict[str, Any]) -> dict[str, Any]:
    """The entry kept per item, with repeated strings shared (codes, units, categories)."""
    out: dict[str, Any] = {}
    for key in _ENTRY_KEYS:
        value = summary[key]
        if isinstance(value, str):
            value = sys.intern(value)
        elif isinstance(value, list):
            value = tuple(sys.intern(v) for v in value)
        elif isinstance(value, dict):
            value = {k: sys.intern(v) if isinstance(v, str) else v for k, v in value.items()}
        out[key] = value
    return out


@dataclass(frozen=True)
class Rendered:
    """A response body ready to send: JSON bytes, their gzip, and the ETag."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, payload: Any) -> Rendered:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        return cls(
            body=body, gzipped=gzip.compress(body, 6, mtime=0), etag=hashlib.sha256(body).hexdigest()[:24]
        )


@dataclass
class Snapshot:
    revision: int
    entries: list[dict[str, Any]]  # published item summaries, catalog order
    by_code: dict[str, dict[str, Any]]
    # Bundles offered to citizens (lists, search): published, with every item published.
    bundles: list[dict[str, Any]]
    # Every published bundle, for its detail: documents + version + availability (`_available`).
    bundle_by_code: dict[str, dict[str, Any]]
    departments: dict[str, dict[str, Any]]
    categories: dict[str, dict[str, Any]]
    ecert_types: dict[str, dict[str, Any]]
    index: SearchIndex
    rendered: OrderedDict[tuple[str, ...], Rendered] = field(default_factory=OrderedDict)


class CatalogReadModel:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        refresh_seconds: float = 2.0,
        detail_cache: int = 500,
    ) -> None:
        self._session_factory = session_factory
        self._refresh = refresh_seconds
        self._detail_cache = detail_cache
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked = 0.0
        self._revision: tuple[float, int] | None = None  # (when read, revision) for revision()

    def reset(self) -> None:
        """Forget the loaded catalog (tests wipe the database under it)."""
        with self._lock:
            self._snapshot = None
            self._checked = 0.0
            self._revision = None

    # --- loading ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        now = time.monotonic()
        if snap is not None and now - self._checked < self._refresh:
            return snap
        session = self._session_factory()
        revision = (
            session.execute(select(CatalogRevision.revision).where(CatalogRevision.id == 1)).scalar() or 0
        )
        self._checked = now
        if snap is not None and snap.revision == revision:
            return snap
        with self._lock:
            if self._snapshot is None or self._snapshot.revision != revision:
                self._snapshot = self._load(session, revision)
            return self._snapshot

    def revision(self) -> int:
        """The newest catalog revision, read at most every `refresh_seconds`, without loading the
        catalog (for caches of other modules that must drop what a catalog change made stale)."""
        known = self._revision
        now = time.monotonic()
        if known is not None and now - known[0] < self._refresh:
            return known[1]
        session = self._session_factory()
        revision = (
            session.execute(select(CatalogRevision.revision).where(CatalogRevision.id == 1)).scalar() or 0
        )
        self._revision = (now, revision)
        return revision

    def _load(self, session: Session, revision: int) -> Snapshot:
        started = time.monotonic()
        departments = {
            d.code: {"code": d.code, "name": d.name, "name_en": d.name_en}
            for d in session.scalars(select(Department).order_by(Department.code))
        }
        categories = {
            c.code: {
                "code": c.code,
                "name": c.name,
                "name_en": c.name_en,
                "audience": c.audience,
                "sort": c.sort,
            }
            for c in session.scalars(select(Category).order_by(Category.sort, Category.code))
        }
        ecerts = {
            e.code: {"code": e.code, "name": e.name, "issuer": e.issuer}
            for e in session.scalars(select(EcertType))
        }
        published_bundles = []
        for b in session.scalars(
            select(Bundle).where(Bundle.status == STATUS_PUBLISHED).order_by(Bundle.code)
        ):
            if b.published_document:
                published_bundles.append({**b.published_document, "version": b.version})
        version, stale = terms_version(), 0
        entries: list[dict[str, Any]] = []
        docs: list[Doc] = []
        for summary in _published_summaries(session):
            terms = summary.get("terms")
            if summary.get("terms_version") != version or terms is None:
                # The dictionary or synonyms changed since this version was published.
                terms = doc_terms({"name": [summary["name"]], "keywords": summary["keywords"]})
                stale += 1
            entry = _slim(summary)
            entries.append(entry)
            docs.append(
                Doc(
                    key=entry["code"],
                    name=entry["name"],
                    terms={f: [sys.intern(t) for t in ts] for f, ts in terms.items()},
                    texts={
                        "category": [categories[c]["name"] for c in entry["categories"] if c in categories],
                        "department": [
                            departments.get(entry["department"], {}).get("name", ""),
                            entry["implementing_body"],
                        ],
                    },
                )
            )
        if stale:
            log.info("catalog: re-cut the search terms of %d items", stale)
        # Sorted here, not by the database, so every backend's collation gives the same order.
        order = sorted(range(len(entries)), key=lambda i: entries[i]["code"])
        entries = [entries[i] for i in order]
        docs = [docs[i] for i in order]
        by_code = {e["code"]: e for e in entries}
        _mark_availability(session, published_bundles, by_code)
        bundles = [b for b in published_bundles if b["_available"]["available"]]
        docs += [
            Doc(
                key=b["code"],
                name=b["name"],
                terms={},
                texts={"name": [b["name"]], "keywords": b["keywords"]},
            )
            for b in bundles
        ]
        index = SearchIndex(docs)
        del docs
        if len(entries) >= _FREEZE_FROM:
            # The snapshot lives until the next revision: keep the cyclic collector from walking
            # its hundreds of thousands of objects on every full collection (~90 ms pauses at
            # 5,000 items). Frozen objects are still freed by reference counting when replaced.
            gc.collect()
            gc.freeze()
        # Decoding every summary briefly took about twice what the snapshot keeps: give that back
        # (10 MB of each worker's resident memory at 5,000 items).
        trim_heap()
        log.info(
            "catalog loaded: revision %d, %d items, %d bundles (%d offered) in %.2f s",
            revision, len(entries), len(published_bundles), len(bundles), time.monotonic() - started,
        )  # fmt: skip
        return Snapshot(
            revision=revision,
            entries=entries,
            by_code=by_code,
            bundles=bundles,
            bundle_by_code={b["code"]: b for b in published_bundles},
            departments=departments,
            categories=categories,
            ecert_types=ecerts,
            index=index,
        )

    def cached(self, snap: Snapshot, key: tuple[str, ...], build: Callable[[], Any]) -> Rendered:
        hit = snap.rendered.get(key)
        if hit is not None:
            return hit
        rendered = Rendered.of(build())
        with self._lock:
            snap.rendered[key] = rendered
            while len(snap.rendered) > self._detail_cache:
                snap.rendered.popitem(last=False)
        return rendered

    # --- compact entries -------------------------------------------------------------------

    def compact(self, snap: Snapshot, entry: dict[str, Any]) -> dict[str, Any]:
        dept = snap.departments.get(entry["department"], {})
        return {
            "code": entry["code"],
            "name": entry["name"],
            "name_en": entry["name_en"],
            "department": {
                "code": entry["department"],
                "name": dept.get("name", ""),
                "name_en": dept.get("name_en", ""),
            },
            "implementing_body": entry["implementing_body"],
            "categories": entry["categories"],
            "region": entry["region"],
            "visits": entry["visits"],
            "at_most_one_visit": entry["visits"] <= 1,
            "fully_online": entry["visits"] == 0,
            "promised_limit": entry["promised_limit"],
            "charged": entry["charged"],
            "min_level": entry["min_level"],
            "version": entry["version"],
        }

    # --- details ---------------------------------------------------------------------------

    def item_detail(self, code: str) -> Rendered:
        snap = self.snapshot()
        entry = snap.by_code.get(code)
        if entry is None:
            raise ItemNotFound()
        return self.cached(
            snap,
            ("item", code, str(entry["version"])),
            lambda: self._detail_payload(snap, code, entry["version"]),
        )

    def fresh_detail(self, code: str) -> Rendered | None:
        """The rendered current detail of `code` if this process has it and its snapshot is
        within `refresh_seconds` of the last revision check; None means "ask the slow path"."""
        snap = self._snapshot
        if snap is None or time.monotonic() - self._checked >= self._refresh:
            return None
        entry = snap.by_code.get(code)
        if entry is None:
            return None
        return snap.rendered.get(("item", code, str(entry["version"])))

    def item_version_detail(self, code: str, version: int) -> Rendered:
        """A pinned version (current or retired) for an application that started on it."""
        snap = self.snapshot()
        return self.cached(
            snap, ("item", code, str(version)), lambda: self._detail_payload(snap, code, version)
        )

    def _detail_payload(self, snap: Snapshot, code: str, version: int) -> dict[str, Any]:
        doc = version_document(self._session_factory(), code, version)
        return self.render_item(snap, doc, version)

    def render_item(self, snap: Snapshot, doc: dict[str, Any], version: int) -> dict[str, Any]:
        dept = snap.departments.get(doc["department"], {})
        materials = []
        for m in doc["materials"]:
            ecerts = [
                {"code": c, "name": snap.ecert_types.get(c, {}).get("name", "")} for c in m["ecert_types"]
            ]
            shared = [
                {"id": s, "name": SHARED_DATASETS[s][0], "name_en": SHARED_DATASETS[s][1]}
                for s in m["shared_data"]
                if s in SHARED_DATASETS
            ]
            materials.append(
                {**m, "ecert_types": ecerts, "shared_data": shared, "upload_needed": not (ecerts or shared)}
            )
        form = doc["form"]
        prefill = {
            path: {"source": src, "label": PREFILL_SOURCES[src][0], "label_en": PREFILL_SOURCES[src][1]}
            for path, src in form["prefill"].items()
        }
        return {
            **{k: v for k, v in doc.items() if k not in ("materials", "form")},
            "version": version,
            "department": {
                "code": doc["department"],
                "name": dept.get("name", ""),
                "name_en": dept.get("name_en", ""),
            },
            "categories": [snap.categories.get(c, {"code": c}) for c in doc["categories"]],
            "at_most_one_visit": doc["visits"] <= 1,
            "fully_online": doc["visits"] == 0,
            "materials": materials,
            "form": {"schema": form["schema"], "ui": form["ui"], "prefill": prefill},
            "burden": burden(doc),
        }

    def bundle_detail(self, code: str) -> Rendered:
        snap = self.snapshot()
        bundle = snap.bundle_by_code.get(code)
        if bundle is None:
            raise BundleNotFound()
        return self.cached(
            snap, ("bundle", code, str(bundle["version"])), lambda: self._bundle_payload(snap, bundle)
        )

    def _bundle_payload(self, snap: Snapshot, bundle: dict[str, Any]) -> dict[str, Any]:
        session = self._session_factory()
        availability = bundle["_available"]
        items, forms = [], {}
        for code in bundle["items"]:
            entry = snap.by_code.get(code)
            if entry is None:  # suspended or withdrawn since: shown, but not part of the form
                items.append({"code": code, **availability["withheld"][code], "available": False})
                continue
            items.append({**self.compact(snap, entry), "available": True})
            forms[code] = version_document(session, code, entry["version"])["form"]
        merged = merge_forms(forms)
        merged["prefill"] = {
            path: {"source": src, "label": PREFILL_SOURCES[src][0], "label_en": PREFILL_SOURCES[src][1]}
            for path, src in merged["prefill"].items()
        }
        return {
            **{k: v for k, v in bundle.items() if k != "_available"},
            "available": availability["available"],
            "unavailable_reason": availability["reason"],
            "unavailable_reason_en": availability["reason_en"],
            "items": items,
            "form": merged,
            "categories": [snap.categories.get(c, {"code": c}) for c in bundle["categories"]],
        }

    def bundle_list(self) -> tuple[Snapshot, list[dict[str, Any]]]:
        snap = self.snapshot()
        out = [
            {
                "code": b["code"],
                "name": b["name"],
                "name_en": b.get("name_en", ""),
                "region": b["region"],
                "categories": b["categories"],
                "outcomes": b["outcomes"],
                "items": len(b["items"]),
                "version": b["version"],
            }
            for b in snap.bundles
        ]
        return snap, out

    # --- lists and search ------------------------------------------------------------------

    def find(
        self,
        *,
        q: str | None,
        category: str | None,
        department: str | None,
        region: str | None,
        at_most_one_visit: bool,
        fully_online: bool,
    ) -> tuple[Snapshot, list[tuple[dict[str, Any], float | None]]]:
        """Matching published items, best first for a text query, catalog order otherwise."""
        snap = self.snapshot()
        if q:
            ranked: list[tuple[dict[str, Any], float | None]] = [
                (snap.by_code[key], score) for key, score in snap.index.search(q) if key in snap.by_code
            ]
        else:
            ranked = [(e, None) for e in snap.entries]
        regions = set(codes.region_ancestors(region)) if region else None
        out = []
        for entry, score in ranked:
            if category and category not in entry["categories"]:
                continue
            if department and entry["department"] != department:
                continue
            if regions is not None and entry["region"] not in regions:
                continue
            if at_most_one_visit and entry["visits"] > 1:
                continue
            if fully_online and entry["visits"] != 0:
                continue
            out.append((entry, score))
        return snap, out

    def matching_bundles(
        self, snap: Snapshot, q: str, *, category: str | None = None, region: str | None = None
    ) -> list[str]:
        """Bundles offered for a text query, under the same category and region filters as the
        items listed with them (a bundle's region: that place, its city, province or nationwide)."""
        regions = set(codes.region_ancestors(region)) if region else None
        out = []
        for key, _ in snap.index.search(q):
            bundle = snap.bundle_by_code.get(key)
            if bundle is None or not bundle["_available"]["available"]:
                continue
            if category and category not in bundle["categories"]:
                continue
            if regions is not None and bundle["region"] not in regions:
                continue
            out.append(key)
        return out


_NOT_OFFERED = {
    "suspended": ("已暂停办理", "is suspended"),
    "draft": ("尚未开放办理", "is not open yet"),
}


def _mark_availability(
    session: Session, bundles: list[dict[str, Any]], by_code: dict[str, dict[str, Any]]
) -> None:
    """Set `_available` on each bundle: a citizen can start it only when every item is published
    (starting one pins every item, and a suspended or unpublished item refuses). A bundle that
    cannot be started is left out of lists and search; its detail says why, in Chinese (and in
    English), and names the items it is waiting for."""
    missing = sorted({code for b in bundles for code in b["items"] if code not in by_code})
    held: dict[str, tuple[str, str, str]] = {}  # code -> (name, status, English name)
    for i in range(0, len(missing), 500):
        rows = session.execute(
            select(
                ServiceItem.code, ServiceItem.name, ServiceItem.status, ServiceItem.published_summary
            ).where(ServiceItem.code.in_(missing[i : i + 500]))
        )
        # The English name from the last published summary (a never-published item has none).
        held.update(
            {
                row.code: (row.name, row.status, (row.published_summary or {}).get("name_en") or "")
                for row in rows
            }
        )
    for b in bundles:
        withheld = {code: held.get(code, ("", "draft", "")) for code in b["items"] if code not in by_code}
        reason = reason_en = None
        if withheld:
            zh = "、".join(
                f"“{name or code}”{_NOT_OFFERED.get(status, _NOT_OFFERED['draft'])[0]}"
                for code, (name, status, _) in withheld.items()
            )
            en = "; ".join(
                f"{name_en or name or code} {_NOT_OFFERED.get(status, _NOT_OFFERED['draft'])[1]}"
                for code, (name, status, name_en) in withheld.items()
            )
            reason = f"暂时无法办理：其中{zh}"
            reason_en = f"Not available for now: {en}"
        b["_available"] = {
            "available": not withheld,
            "reason": reason,
            "reason_en": reason_en,
            "withheld": {
                code: {"name": name, "name_en": name_en} for code, (name, _, name_en) in withheld.items()
            },
        }
