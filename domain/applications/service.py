"""Applications: create with prefill, autosave with If-Match, submit, resubmit, withdraw, purge.

Views and callbacks call these functions; every one takes the session, commits its own
transaction and checks that the application belongs to the account (another account's
application is "not found"). Moves of the handling side live in `transitions.py`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import insert_rows, is_id, load_for_update, new_id, pending_update, read_rows, take_write_lock
from domain.accounts import profile_cache
from domain.accounts.models import Account
from domain.applications import checks, forms, references, states
from domain.applications.deadlines import on_transition
from domain.applications.deps import ApplicationDeps
from domain.applications.errors import (
    ApplicationNotFound,
    CaseNumberRetry,
    ChannelNotOffered,
    FieldLocked,
    FieldReadOnly,
    IllegalTransition,
    InvalidPatch,
    NotEditable,
    SubmissionInvalid,
    VersionConflict,
)
from domain.applications.models import (
    Application,
    ApplicationEvent,
    ApplicationFile,
    ApplicationMaterial,
    ForwardingOutbox,
)
from domain.applications.prefill import SOURCE_USER, PrefillContext, decrypt_data, encrypt_data, get_path
from domain.applications.timeline import add_event, event_row
from domain.catalog.models import ServiceItem, ServiceItemVersion
from domain.identity.models import ConsentRecord
from domain.ledger import service as ledger
from domain.ledger.models import DEPARTMENT, DataAccess
from domain.shared_data.models import SharingGrant
from domain.shared_data.views import GrantTimes

CONSENT_PURPOSE = "application_share"


def spec_of(session: Session, app: Application) -> forms.FormSpec:
    return forms.spec_for(session, [(i["code"], i["version"]) for i in app.items], name=app.service_name)


def department_code_of(session: Session, app: Application) -> str | None:
    """The catalog code of the department handling the application's (first) item, as pinned:
    the department its rating and complaints go to. None when the version cannot be read."""
    first = app.items[0] if app.items else None
    if not isinstance(first, dict) or "code" not in first or "version" not in first:
        return None
    document = session.scalar(
        select(ServiceItemVersion.document)
        .join(ServiceItem, ServiceItem.id == ServiceItemVersion.item_id)
        .where(ServiceItem.code == first["code"], ServiceItemVersion.version == first["version"])
    )
    code = document.get("department") if isinstance(document, dict) else None
    return code if isinstance(code, str) and code else None


def department_codes_of(session: Session, app: Application) -> set[str]:
    """The catalog codes of the departments handling the application's items, as pinned (a
    bundle's items may belong to several departments)."""
    pins = [(i["code"], i["version"]) for i in app.items or () if isinstance(i, dict) and "code" in i]
    codes: set[str] = set()
    for code, version in pins:
        document = session.scalar(
            select(ServiceItemVersion.document)
            .join(ServiceItem, ServiceItem.id == ServiceItemVersion.item_id)
            .where(ServiceItem.code == code, ServiceItemVersion.version == version)
        )
        department = document.get("department") if isinstance(document, dict) else None
        if isinstance(department, str) and department:
            codes.add(department)
    return codes


# Built once (the expression and its cache key): every request on an application runs one.
_OWNED = select(Application).where(
    Application.id == bindparam("app_id"), Application.account_id == bindparam("account_id")
)
_OWNED_LOCKED = _OWNED.with_for_update()
BY_ID = Application.id == bindparam("app_id")  # for take_write_lock
_SUBMITTING = (
    select(
        *Application.__table__.columns,  # as core.db.load_for_update reads them
        SharingGrant.granted_at,
        SharingGrant.revoked_at,
    )  # fmt: skip
    .outerjoin(SharingGrant, SharingGrant.application_id == Application.id)  # for the view
    .where(Application.id == bindparam("app_id"), Application.account_id == bindparam("account_id"))
    .with_for_update(of=Application.__table__)
)
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
_MATERIALS = (
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
    """The citizen changed the application: it is updated now, and a draft's expiry starts again."""
    app.updated_at = now
    if app.status == states.DRAFT:
        app.expires_at = now + timedelta(days=deps.draft_ttl_days)


def status_params(status: str) -> dict[str, str]:
    return {"current": states.label(status), "current_en": states.label(status, "en")}


def create(
    session: Session,
    deps: ApplicationDeps,
    *,
    account_id: str,
    channel: str,
    service_code: str | None,
    bundle_code: str | None,
    request_id: str | None = None,
) -> Application:
    target = forms.pin_target(session, service_code=service_code, bundle_code=bundle_code)
    spec = forms.spec_for(session, target.items, name=target.name or None)
    if channel not in spec.channels:
        raise ChannelNotOffered(details={"channels": sorted(spec.channels)})
    now = clock.now()
    app_id = new_id()
    ctx = PrefillContext(
        session=session, encryptor=deps.encryptor, account_id=account_id, application_id=app_id,
        item_codes=tuple(c for c, _ in target.items), now=now, request_id=request_id,
    )  # fmt: skip
    data, provenance = deps.prefiller.fill(ctx, spec.prefill, spec)
    app = Application(
        id=app_id, account_id=account_id, kind=target.kind, service_code=target.service_code,
        bundle_code=target.bundle_code, items=[{"code": c, "version": v} for c, v in target.items],
        service_name=spec.name, status=states.DRAFT, revision=1, submission_version=0,
        data_enc=encrypt_data(deps.encryptor, data), provenance=provenance, created_channel=channel,
        created_at=now, updated_at=now, expires_at=now + timedelta(days=deps.draft_ttl_days),
        paused_working_days=0, fields_prefilled=0, fields_typed=0, materials_without_upload=0,
        materials_uploaded=0,
    )  # fmt: skip
    session.add(app)
    session.flush()
    references.attach(ctx, deps.material_sources, spec.materials)
    add_event(session, app, None, states.DRAFT, now, actor_type="citizen", actor_id=account_id)
    session.commit()
    return app


# --- autosave -------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _touched(patch: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(path, value) of every place the patch sets or removes; objects recurse.

    A key is one name: "delivery.method" as a key would store a literal dotted key that no
    form field reads, while provenance and the supplement scope, which speak in paths, would
    take it for the nested field. Such keys come back as the empty path's problem.
    """
    out: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if not key or "." in key:
            raise InvalidPatch(
                fields={
                    f"data.{prefix + '.' if prefix else ''}{key}": [
                        checks.Text(
                            "Nest objects instead of writing a dotted name",
                            "请按表单结构逐层填写，名称中不能含“.”",
                        )
                    ]
                }
            )
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out.extend(_touched(value, path))
        else:
            out.append((path, value))
    return out


def supplement_fields(app: Application) -> list[str]:
    """What a supplement lets the citizen edit: the fields the request names and the blanks of
    their groups when it was made (transitions.record_stage)."""
    supplement = app.supplement or {}
    return [*(supplement.get("fields") or []), *(supplement.get("blank_neighbours") or [])]


def _check_patch(spec: forms.FormSpec, app: Application, patch: dict[str, Any]) -> list[tuple[str, Any]]:
    touched = _touched(patch)
    problems = checks.Problems()
    read_only, locked = [], []
    allowed = set(supplement_fields(app)) if app.status == states.SUPPLEMENT_REQUESTED else None
    for path, value in touched:
        leaves = [leaf for leaf in spec.leaves if leaf == path or leaf.startswith(path + ".")]
        if not leaves:
            problems.add(
                f"data.{path}", checks.Text("This field is not part of the form", "表单中没有这一项")
            )
            continue
        read_only += [leaf for leaf in leaves if (app.provenance.get(leaf) or {}).get("read_only")]
        if allowed is not None:
            locked += [leaf for leaf in leaves if leaf not in allowed]
        if value is not None and path in spec.leaves:
            checks.check_leaf(problems, spec, path, value)
        elif value is not None:
            problems.add(
                f"data.{path}",
                checks.Text("This is a group of fields, not a value", "这是一组信息，不能直接填写"),
            )
    if read_only:
        raise FieldReadOnly(
            fields={f"data.{p}": [checks.Text("Read-only", "来自权威数据源，不能修改")] for p in read_only}
        )
    if locked:
        raise FieldLocked(
            fields={
                f"data.{p}": [checks.Text("Not named in the supplement request", "不在补正范围内")]
                for p in locked
            }
        )
    if problems.fields:
        raise InvalidPatch(fields=problems.fields)
    return touched


def patch(
    session: Session,
    deps: ApplicationDeps,
    *,
    account_id: str,
    app_id: str,
    if_match: int,
    data_patch: dict[str, Any],
) -> Application:
    """Autosave part of the form. A stale If-Match gets 412 with the current revision."""
    app = owned(session, account_id, app_id, lock=True)
    if app.revision != if_match:
        raise VersionConflict(details={"current_revision": app.revision})
    if app.status not in states.EDITABLE:
        raise NotEditable(**status_params(app.status))
    spec = spec_of(session, app)
    touched = _check_patch(spec, app, data_patch)
    now = clock.now()
    data = merge_patch(decrypt_data(deps.encryptor, app.data_enc), data_patch)
    provenance = dict(app.provenance)
    for path, _ in touched:
        for leaf in [p for p in spec.leaves if p == path or p.startswith(path + ".")]:
            if get_path(data, leaf) is None:
                provenance.pop(leaf, None)
            else:
                before = provenance.get(leaf) or {}
                entry = {
                    "source": SOURCE_USER,
                    "retrieved_at": now.isoformat(),
                    "verified": False,
                    "read_only": False,
                }
                if before.get("source") not in (None, SOURCE_USER):
                    entry["replaced"] = before["source"]
                provenance[leaf] = entry
    # Conditional on the revision read: a racing writer that committed first makes this a 412.
    result = session.execute(
        update(Application)
        .where(Application.id == app.id, Application.revision == if_match)
        .values(
            data_enc=encrypt_data(deps.encryptor, data),
            provenance=provenance,
            revision=if_match + 1,
            updated_at=now,
            expires_at=now + timedelta(days=deps.draft_ttl_days)
            if app.status == states.DRAFT
            else app.expires_at,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise VersionConflict(details={"current_revision": owned(session, account_id, app_id).revision})
    profile_cache.mark_changed(session, app.account_id)  # a Core update: the ORM does not see it
    profile_cache.mark_application_changed(session, app.id)
    session.commit()
    session.refresh(app)
    return app


# --- submission -----------------------------------------------------------------------------


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
    for row in read_rows(session, _MATERIALS, {"app_id": app_id}):
        found = Satisfying(*row)
        out.setdefault(found.material_id, []).append(found)
    return out


# Submit judges the applicant's identity level and face freshness from the account row (not the
# token) as it is once the application is locked: read with the materials, in the statement after
# the locking read. Read in the locking statement, they came from that statement's snapshot,
# taken before the lock was waited for (PostgreSQL evaluates the other tables of a SELECT ... FOR
# UPDATE OF one table that way, like a subquery), so an identity displaced or merged away while
# the submission queued behind an autosave or an upload still counted. One row even without
# materials (the account's, outer-joined to them).
_A = Account.__table__
_SUBMIT_MATERIALS = (
    select(_A.c.identity_level, _A.c.live_checked_at, *_MATERIALS.selected_columns)
    .select_from(
        _A.outerjoin(_M, _M.c.application_id == bindparam("app_id")).outerjoin(_F, _F.c.id == _M.c.file_id)
    )
    .where(_A.c.id == bindparam("account_id"))
    .order_by(_M.c.attached_at)
)


def _identity_and_materials(
    session: Session, account_id: str, app_id: str
) -> tuple[str, datetime | None, dict[str, list[Satisfying]]]:
    """The account's identity level and last live check, and the application's materials (as
    `satisfied_materials`), read in one statement after the application was locked."""
    rows = read_rows(session, _SUBMIT_MATERIALS, {"account_id": account_id, "app_id": app_id})
    if not rows:
        raise ApplicationNotFound()  # the account is gone (the lock found its application)
    out: dict[str, list[Satisfying]] = {}
    for row in rows:
        if row[2] is not None:
            found = Satisfying(*row[2:])
            out.setdefault(found.material_id, []).append(found)
    return rows[0][0], rows[0][1], out


def _burden(app: Application, spec: forms.FormSpec, data: dict[str, Any], satisfied: dict[str, list]) -> None:
    prefilled = typed = 0
    for leaf in spec.leaves:
        if get_path(data, leaf) is None:
            continue
        if (app.provenance.get(leaf) or {}).get("source", SOURCE_USER) == SOURCE_USER:
            typed += 1
        else:
            prefilled += 1
    uploaded = sum(1 for rows in satisfied.values() if any(r.kind == "upload" for r in rows))
    app.fields_prefilled, app.fields_typed = prefilled, typed
    app.materials_uploaded = uploaded
    app.materials_without_upload = len(satisfied) - uploaded


def _unusable_certificates(
    session: Session, deps: ApplicationDeps, account_id: str, satisfied: dict[str, list[Satisfying]]
) -> set[str]:
    """Ids of attached e-certificate references the library no longer vouches for."""
    rows = [r for rows in satisfied.values() for r in rows if r.kind == "ecert" and r.ref]
    if not rows or deps.certificate_check is None:
        return set()
    ok = deps.certificate_check(session, account_id, sorted({r.ref for r in rows if r.ref}))
    return {r.id for r in rows if not ok.get(r.ref or "", False)}


class Submitted(NamedTuple):
    """An application as a write path just read it: the view renders from this, not a re-read."""

    app: Application
    satisfied: dict[str, list[Satisfying]]  # its materials
    grant: GrantTimes | None  # its data-sharing grant, if any
    data: dict[str, Any]  # its form data, decrypted


def submit(
    session: Session,
    deps: ApplicationDeps,
    *,
    account_id: str,
    app_id: str,
    consent: dict[str, Any] | None,
    channel: str,
    ip: str | None = None,
    request_id: str | None = None,
) -> Submitted:
    """Submit a draft, or resubmit after a supplement request; all problems at once (422)."""
    take_write_lock(session, Application.__table__, BY_ID, params={"app_id": app_id})
    # Written below with the appended rows in one statement, not by the unit of work at the commit.
    found = load_for_update(session, Application, _SUBMITTING, {"app_id": app_id, "account_id": account_id})
    if found is None:
        raise ApplicationNotFound()
    app, (granted_at, revoked_at) = found
    target = states.SUBMITTED if app.status == states.DRAFT else states.RESUBMITTED
    if not states.allowed(app.status, target, states.CITIZEN):
        raise IllegalTransition(**status_params(app.status))
    spec = spec_of(session, app)
    data = decrypt_data(deps.encryptor, app.data_enc)
    identity_level, live_checked_at, satisfied = _identity_and_materials(session, account_id, app.id)
    problems = checks.Problems()
    revoked = _unusable_certificates(session, deps, account_id, satisfied)
    for material_id, rows in list(satisfied.items()):
        left = [r for r in rows if r.id not in revoked]
        if len(left) < len(rows) and not left:
            del satisfied[material_id]
            if spec.materials.get(material_id, {}).get("requirement") == "required":
                checks.certificate_not_valid(problems, spec, material_id)
        elif len(left) < len(rows):
            satisfied[material_id] = left
    checks.check_data(problems, spec.validator, data)
    checks.check_materials(problems, spec, set(satisfied))
    checks.check_identity(
        problems, spec, level=identity_level,
        live_checked_at=live_checked_at.timestamp() if live_checked_at else None,
        now=clock.timestamp(), offered=deps.identity_methods.get(channel, []),
    )  # fmt: skip
    text, text_version = consent_text(spec)
    if target == states.SUBMITTED:
        checks.check_consent(problems, consent, text_version)
    if problems.fields:
        raise SubmissionInvalid(fields=problems.fields, details=problems.details or None, count=len(problems))
    if revoked:
        session.execute(delete(ApplicationMaterial).where(ApplicationMaterial.id.in_(revoked)))
    now = clock.now()
    previous = app.status
    rows: list[tuple[Any, dict[str, Any]]] = []  # inserted together, in one round trip on PostgreSQL
    if target == states.SUBMITTED:
        consent_id = new_id()
        rows.append((ConsentRecord.__table__, {
            "id": consent_id, "account_id": account_id, "purpose": CONSENT_PURPOSE,
            "text_version": text_version, "channel": channel, "given_at": now, "ip": ip,
            "request_id": request_id,
        }))  # fmt: skip
        app.consent_id = consent_id
        app.submitted_at = now
        app.expires_at = None
    _burden(app, spec, data, satisfied)
    app.submission_version += 1
    app.status = target
    app.supplement = None
    app.revision += 1
    app.updated_at = now
    if target == states.RESUBMITTED:
        on_transition(session, app, target, now, limits=spec.time_limits, region=spec.region)
    rows.append(event_row(app, previous, target, now, actor_type="citizen", actor_id=account_id))
    # The case-number serial is one row per item and day, so every submission of the item
    # queues on it: take it last (on SQLite it is held until the commit).
    if target == states.SUBMITTED:
        app.case_number = deps.case_numbers.next(session, code=app.service_code, when=now)
    rows.append(_outbox_row(app, "submit" if target == states.SUBMITTED else "resubmit", now))
    # The citizen's data goes to the handling departments (with the consent just recorded).
    rows.append((DataAccess.__table__, ledger.line(
        account_id=account_id, at=now, accessor_type=DEPARTMENT,
        accessor_name="、".join(spec.departments) or "承办部门", source="application",
        resource=f"application:{app.case_number}", resource_name="申请表单、材料及所用共享数据",
        purpose=f"办理「{app.service_name}」（经省政务服务平台）", application_id=app.id,
    )))  # fmt: skip
    rows.append((audit.AuditEvent.__table__, audit.event_values(
        actor_type="citizen", actor_id=account_id, action=f"application.{target}",
        target_type="application", target_id=app.id, ip=ip, request_id=request_id,
        details={"case_number": app.case_number, "version": app.submission_version},
    )))  # fmt: skip
    # The application's UPDATE comes after the rows: it references the consent row.
    try:
        insert_rows(session, rows, {"seq_application_id": app.id}, update=pending_update(app))
    except IntegrityError as exc:
        if _constraint(exc) != "uq_applications_case_number":
            raise
        session.rollback()
        deps.case_numbers.forget_reserved()  # a lost reservation: this process's blocks are stale
        raise CaseNumberRetry() from exc
    profile_cache.mark_changed(session, account_id)  # a Core update: the ORM does not see it
    profile_cache.mark_application_changed(session, app.id)
    session.commit()
    return Submitted(app, satisfied, GrantTimes(granted_at, revoked_at) if granted_at else None, data)


def _constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint a PostgreSQL integrity error names (None elsewhere)."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _outbox_row(
    app: Application, kind: str, now: datetime, note: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The row the province adapter sends: one per submission, resubmission or withdrawal."""
    return ForwardingOutbox.__table__, {
        "id": new_id(), "application_id": app.id, "kind": kind, "submission_version": app.submission_version,
        "case_number": app.case_number, "state": "pending", "attempts": 0, "created_at": now,
        "next_attempt_at": now, "note": note,
    }  # fmt: skip


def withdraw(
    session: Session, *, account_id: str, app_id: str, reason: str | None, request_id: str | None = None
) -> Application:
    app = owned(session, account_id, app_id, lock=True)
    if not states.withdrawable(app.status, accepted=app.clock_started_on is not None):
        raise IllegalTransition(**status_params(app.status))
    now = clock.now()
    previous = app.status
    app.status = states.WITHDRAWN
    app.supplement = None
    app.paused_on = None  # a withdrawn case has no clock: neither paused nor overdue
    app.revision += 1
    app.updated_at = now
    event = event_row(
        app, previous, states.WITHDRAWN, now, actor_type="citizen", actor_id=account_id, note=reason
    )
    insert_rows(
        session, [_outbox_row(app, "withdraw", now, note=reason), event], {"seq_application_id": app.id}
    )
    session.commit()
    return app


def delete_draft(session: Session, *, account_id: str, app_id: str) -> None:
    app = owned(session, account_id, app_id, lock=True)
    if app.status != states.DRAFT:
        raise IllegalTransition(**status_params(app.status))
    session.delete(app)
    session.commit()


def purge_expired_drafts(session: Session, *, limit: int = 500) -> int:
    """Delete drafts nobody touched for the configured period; their files become orphans."""
    now = clock.now()
    expired = (Application.status == states.DRAFT, Application.expires_at < now)
    take_write_lock(session, Application.__table__, *expired)
    # Locked: a draft submitted or saved meanwhile is skipped now, or waits and then finds it gone.
    rows = session.execute(
        select(Application.id, Application.account_id)
        .where(*expired)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    ids = [r.id for r in rows]
    for r in rows:
        profile_cache.mark_changed(session, r.account_id)  # their cached lists drop after the commit
    profile_cache.mark_application_changed(session, *ids)  # and so do their cached views
    if ids:
        session.execute(delete(ApplicationMaterial).where(ApplicationMaterial.application_id.in_(ids)))
        session.execute(delete(ApplicationEvent).where(ApplicationEvent.application_id.in_(ids)))
        session.execute(delete(Application).where(Application.id.in_(ids)))
    session.commit()
    return len(ids)
