"""What an application asks for: the pinned item versions' form, materials and requirements.

Published versions never change, but the department names a spec carries (part of the consent
text and its version) do: a spec is built once per (items, versions, bundle name) and kept per
process until the catalog revision changes (a department renamed, an item or bundle published).
A bundle (一件事) merges its items' forms (domain/catalog/bundles.merge_forms) and asks
each material once: two items that need the same material id are satisfied by one file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.applications.errors import ServiceUnknown
from domain.catalog.bundles import merge_forms
from domain.catalog.errors import BundleNotFound, ItemNotFound, ItemSuspended, VersionNotFound
from domain.catalog.form_schema import leaf_fields
from domain.catalog.form_validator import FormValidator
from domain.catalog.models import STATUS_PUBLISHED, Bundle, Department
from domain.catalog.revision import current_revision
from domain.catalog.versions import pin_current, version_document
from domain.identity.levels import Requirement, higher

_FORMATS = FormatChecker()


def material_name(material: dict[str, Any], lang: str) -> str:
    """A material's name in the request's language; Chinese when the catalog has no English."""
    return (material.get("name_en") or material["name"]) if lang == "en" else material["name"]


@dataclass(frozen=True)
class FormSpec:
    items: tuple[tuple[str, int], ...]  # (code, version)
    name: str
    schema: dict[str, Any]
    ui: dict[str, Any]
    prefill: dict[str, str]  # field path -> source
    leaves: dict[str, dict[str, Any]]  # field path -> leaf schema
    materials: dict[str, dict[str, Any]]  # material id -> material (requirement merged)
    requirement: Requirement
    channels: frozenset[str]
    time_limits: tuple[dict[str, Any], ...]  # promised limit of each item
    region: str
    departments: tuple[str, ...]  # names of the handling departments
    validator: Draft202012Validator = field(compare=False, repr=False)
    name_en: str = ""  # a single item's English name ("" when the catalog has none, and for bundles)

    def leaf_validator(self, path: str) -> Draft202012Validator:
        """The validator of the field at `path` (its own schema; not `required`): the form's
        validator moved to the leaf, so a `$ref` inside it resolves against the whole form (a
        leaf validated alone cannot resolve `#/$defs/...` and raises)."""
        return self.validator.evolve(schema=self.leaves[path])

    def accepts(self, path: str, value: Any) -> bool:
        """Whether `value` is valid for the field at `path`."""
        return self.leaf_validator(path).is_valid(value)


_cache: dict[tuple[tuple[tuple[str, int], ...], str | None], FormSpec] = {}
_lock = threading.Lock()


class _Revision:
    """The catalog revision the cached specs were built at, and where to read the current one:
    the app's catalog read model (one tiny query every CATALOG_REFRESH_SECONDS, shared with the
    catalog views), else the database (CLI and worker processes)."""

    built_at: int | None = None
    source: Callable[[], int] | None = None


_revision = _Revision()


def configure(revision: Callable[[], int] | None) -> None:
    """Install how this process learns the catalog revision (the app factory does this)."""
    _revision.source = revision


def specs_revision() -> int | None:
    """The catalog revision this process's specs were built at: caches of what is derived from
    a spec (the data-sharing consent text) are dropped when it moves, as the specs are."""
    return _revision.built_at


def _current_revision(session: Session) -> int:
    source = _revision.source
    return source() if source is not None else current_revision(session)


def _department_names(session: Session, codes: list[str]) -> tuple[str, ...]:
    names = dict(
        session.execute(select(Department.code, Department.name).where(Department.code.in_(codes))).all()
    )
    return tuple(dict.fromkeys(names.get(c, c) for c in codes))


def spec_for(session: Session, items: list[tuple[str, int]], *, name: str | None = None) -> FormSpec:
    """The spec of pinned item versions. A bundle's name is part of the key: two bundles of the
    same items, or a renamed one, keep their own. Every spec is dropped when the catalog revision
    changes: all of this process's workers then name the renamed department in the consent text
    (a worker that kept the old name answered "授权内容已更新" to a consent another one showed)."""
    key = tuple((code, int(version)) for code, version in items)
    revision = _current_revision(session)
    if revision != _revision.built_at:
        with _lock:
            if revision != _revision.built_at:
                _cache.clear()
                _revision.built_at = revision
    cached = _cache.get((key, name))
    if cached is not None:
        return cached
    docs = [version_document(session, code, version) for code, version in key]
    if len(docs) == 1:
        form = docs[0]["form"]
    else:
        form = merge_forms({doc["code"]: doc["form"] for doc in docs})
    materials: dict[str, dict[str, Any]] = {}
    requirement = Requirement()
    channels: set[str] | None = None
    for doc in docs:
        for material in doc["materials"]:
            known = materials.get(material["id"])
            if known is None:
                materials[material["id"]] = {**material, "items": [doc["code"]]}
            else:
                known["items"].append(doc["code"])
                if material["requirement"] == "required":
                    known["requirement"] = "required"
                known["ecert_types"] = list(dict.fromkeys(known["ecert_types"] + material["ecert_types"]))
                known["shared_data"] = list(dict.fromkeys(known["shared_data"] + material["shared_data"]))
        item_req = Requirement.of(doc["identity"])
        minutes = [m for m in (requirement.face_within_minutes, item_req.face_within_minutes) if m]
        requirement = Requirement(
            higher(requirement.min_level, item_req.min_level), min(minutes) if minutes else None
        )
        channels = set(doc["channels"]) if channels is None else channels & set(doc["channels"])
    spec = FormSpec(
        items=key,
        name=name or docs[0]["name"],
        schema=form["schema"],
        ui=form["ui"],
        prefill=dict(form["prefill"]),
        leaves=leaf_fields(form["schema"]),
        materials=materials,
        requirement=requirement,
        channels=frozenset(channels or ()),
        time_limits=tuple(doc["time_limits"]["promised"] for doc in docs),
        region=docs[0]["region"],
        departments=_department_names(session, [doc["department"] for doc in docs]),
        name_en=docs[0].get("name_en") or "" if len(docs) == 1 else "",
        validator=FormValidator(form["schema"], format_checker=_FORMATS),
    )
    with _lock:
        if _revision.built_at == revision:  # not if another thread moved to a newer revision meanwhile
            _cache[(key, name)] = spec
    return spec


@dataclass(frozen=True)
class Target:
    kind: str
    service_code: str
    bundle_code: str | None
    name: str
    items: list[tuple[str, int]]


def pin_target(session: Session, *, service_code: str | None, bundle_code: str | None) -> Target:
    """Pin the published version(s) a new application will keep reading."""
    try:
        if service_code:
            pin = pin_current(session, service_code)
            return Target("item", pin.code, None, "", [(pin.code, pin.version)])
        bundle = session.scalar(select(Bundle).where(Bundle.code == bundle_code))
        if bundle is None or bundle.status != STATUS_PUBLISHED or not bundle.published_document:
            raise BundleNotFound()
        pins = [pin_current(session, code) for code in bundle.published_document["items"]]
    except (ItemNotFound, ItemSuspended, BundleNotFound, VersionNotFound) as exc:
        raise ServiceUnknown(details={"reason": exc.code}) from exc
    return Target("bundle", pins[0].code, bundle.code, bundle.name, [(p.code, p.version) for p in pins])
