"""Applications: the lookups shared by drafts, submission, materials, views and other areas.

The form spec and handling departments of an application, the account's own application
("not found" for another account's), its satisfied materials and the consent text. Drafts are
created and edited in `drafts.py`, submitted and withdrawn in `submission.py`; moves of the
handling side live in `transitions.py`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session

from core.db import is_id, take_write_lock
from core.db_statements import read_rows
from domain.applications import forms, states
from domain.applications.deps import ApplicationDeps
from domain.applications.errors import ApplicationNotFound
from domain.applications.models import Application, ApplicationFile, ApplicationMaterial
from domain.catalog.models import ServiceItem, ServiceItemVersion


def spec_of(session: Session, app: Application) -> forms.FormSpec:
    return forms.spec_for(session, [(i["code"], i["version"]) for i in app.items], name=app.service_name)


def _pin(item: Any) -> tuple[str, int] | None:
    """One pinned item as (code, version); None when it cannot be read (legacy or edited data)."""
    if not isinstance(item, dict):
        return None
    code, version = item.get("code"), item.get("version")
    if isinstance(code, str) and isinstance(version, int) and not isinstance(version, bool):
        return code, version
    return None


def _pins(app: Application) -> list[tuple[str, int]]:
    items = app.items if isinstance(app.items, list) else []
    return [pin for pin in map(_pin, items) if pin is not None]


def _departments(session: Session, pins: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The department each pinned item version names, in one statement (pins that name none or
    no longer exist are left out)."""
    if not pins:
        return {}
    rows = session.execute(
        select(ServiceItem.code, ServiceItemVersion.version, ServiceItemVersion.document)
        .join(ServiceItem, ServiceItem.id == ServiceItemVersion.item_id)
        .where(tuple_(ServiceItem.code, ServiceItemVersion.version).in_(pins))
    )
    out: dict[tuple[str, int], str] = {}
    for code, version, document in rows:
        department = document.get("department") if isinstance(document, dict) else None
        if isinstance(department, str) and department:
            out[(code, version)] = department
    return out


def department_code_of(session: Session, app: Application) -> str | None:
    """The catalog code of the department handling the application's (first) item, as pinned:
    the department its rating and complaints go to. None when the version cannot be read."""
    first = _pin(app.items[0]) if isinstance(app.items, list) and app.items else None
    if first is None:
        return None
    return _departments(session, [first]).get(first)


def department_codes_of(session: Session, app: Application) -> set[str]:
    """The catalog codes of the departments handling the application's items, as pinned (a
    bundle's items may belong to several departments)."""
    return set(_departments(session, _pins(app)).values())


# Built once (the expression and its cache key): every request on an application runs one.
_OWNED = select(Application).where(
    Application.id == bindparam("app_id"), Application.account_id == bindparam("account_id")
)
_OWNED_LOCKED = _OWNED.with_for_update()
BY_ID = Application.id == bindparam("app_id")  # for take_write_lock
_M, _F = ApplicationMaterial.__table__, ApplicationFile.__table__


class Satisfying(NamedTuple):
    """One way a material of an application is satisfied, with its file's facts for the view."""

    id: str
    material_id: str
    kind: str  # upload, reuse, ecert, shared
    file_id: str | None
    ref: str | None
    attached_at: datetime
    media_type: str | None
    size: int | None
    sha256: str | None


# Plain rows, not ORM objects: submit and the detail view only read them, and loading two
# mapped objects per material cost more than the query itself.
MATERIALS = (
    select(_M.c.id, _M.c.material_id, _M.c.kind, _M.c.file_id, _M.c.ref, _M.c.attached_at,
           _F.c.media_type, _F.c.size, _F.c.sha256)
    .select_from(_M.outerjoin(_F, _F.c.id == _M.c.file_id))
    .where(_M.c.application_id == bindparam("app_id"))
    .order_by(_M.c.attached_at)
)  # fmt: skip


def owned(session: Session, account_id: str, app_id: str, *, lock: bool = False) -> Application:
    if not is_id(app_id):
        raise ApplicationNotFound()
    if lock:
        take_write_lock(session, Application.__table__, BY_ID, params={"app_id": app_id})
    app = session.scalar(_OWNED_LOCKED if lock else _OWNED, {"app_id": app_id, "account_id": account_id})
    if app is None:
        raise ApplicationNotFound()
    return app


def mark_edited(app: Application, deps: ApplicationDeps, now: datetime) -> None:
    """The citizen changed the application: it is updated now, and a draft's expiry starts again
    (a supplement's named material changed: the supplement is answered)."""
    app.updated_at = now
    if app.status == states.DRAFT:
        app.expires_at = now + timedelta(days=deps.draft_ttl_days)
    answered = supplement_answered(app)
    if answered is not None:
        app.supplement = answered


def supplement_answered(app: Application) -> dict[str, Any] | None:
    """The supplement as answered, if the citizen's change answers one still waiting for a
    change (`answered: false`, set when the request named fields or materials); None otherwise.
    Only named fields, their group's blanks and named materials are editable during a
    supplement, so any change that went through is one of them."""
    supplement = app.supplement or {}
    if app.status != states.SUPPLEMENT_REQUESTED or supplement.get("answered") is not False:
        return None
    return {**supplement, "answered": True}  # a new dict: the JSON column sees the change


def status_params(status: str) -> dict[str, str]:
    return {"current": states.label(status), "current_en": states.label(status, "en")}


def consent_text(spec: forms.FormSpec) -> tuple[str, str]:
    """(text, version) of the consent to share this application with the handling departments."""
    materials = "、".join(m["name"] for m in spec.materials.values()) or "无"
    departments = "、".join(spec.departments)
    text = (
        f"本人同意将本次申请（{spec.name}）填写的表单信息、提交的材料及本人实名身份信息提供给"
        f"承办部门（{departments}）及省政务服务平台，仅用于办理本事项。涉及材料：{materials}。"
    )
    version = "share-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return text, version


def satisfied_materials(session: Session, app_id: str) -> dict[str, list[Satisfying]]:
    out: dict[str, list[Satisfying]] = {}
    for row in read_rows(session, MATERIALS, {"app_id": app_id}):
        found = Satisfying(*row)
        out.setdefault(found.material_id, []).append(found)
    return out


def supplement_fields(app: Application) -> list[str]:
    """What a supplement lets the citizen edit: the fields the request names and the blanks of
    their groups when it was made (transitions.record_stage)."""
    supplement = app.supplement or {}
    return [*(supplement.get("fields") or []), *(supplement.get("blank_neighbours") or [])]
