"""Drafts: create with prefill, autosave with If-Match, delete, and purge the expired ones.

Views call these functions; every one takes the session, commits its own transaction and checks
that the application belongs to the account (another account's application is "not found").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core import clock
from core.db import new_id, take_write_lock
from domain.accounts import profile_cache
from domain.applications import checks, forms, references, states
from domain.applications.deps import ApplicationDeps
from domain.applications.errors import (
    ChannelNotOffered,
    FieldLocked,
    FieldReadOnly,
    IllegalTransition,
    InvalidPatch,
    NotEditable,
    VersionConflict,
)
from domain.applications.models import Application, ApplicationEvent, ApplicationMaterial
from domain.applications.prefill import SOURCE_USER, PrefillContext, decrypt_data, encrypt_data, get_path
from domain.applications.service import owned, spec_of, status_params, supplement_answered, supplement_fields
from domain.applications.timeline import add_event


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


def _without_empty_groups(spec: forms.FormSpec, patch: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`patch` without the groups it sets to {} (or to only such groups): merged, they would
    change nothing but add an empty object where the group was absent."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and path not in spec.leaves:
            value = _without_empty_groups(spec, value, path)
            if not value:
                continue
        out[key] = value
    return out


def _without_shown_masks(
    provenance: dict[str, Any], patch: dict[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """`patch` without the values that are exactly the mask the citizen was shown (`张*`,
    `139****6989`): a phone that saves the whole form as displayed (a draft resumed on the
    other channel) sends them back unchanged. Taken as written they would be refused (a
    verified field is read-only, a masked phone fails its pattern) or would replace the value
    behind the mask with the mask itself."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            value = _without_shown_masks(provenance, value, path)
            if not value:
                continue  # everything in it was shown as it is: nothing of the group changes
        elif (
            "." not in key and isinstance(value, str) and value == (provenance.get(path) or {}).get("masked")
        ):
            continue
        out[key] = value
    return out


def _check_patch(spec: forms.FormSpec, app: Application, patch: dict[str, Any]) -> list[tuple[str, Any]]:
    problems = checks.Problems()
    read_only, locked = [], []
    allowed = set(supplement_fields(app)) if app.status == states.SUPPLEMENT_REQUESTED else None
    touched = []
    for path, value in _touched(patch):
        leaves = [leaf for leaf in spec.leaves if leaf == path or leaf.startswith(path + ".")]
        if not leaves:
            problems.add(
                f"data.{path}", checks.Text("This field is not part of the form", "表单中没有这一项")
            )
            continue
        if value == {} and path not in spec.leaves:
            # An empty object merged into a group changes nothing (RFC 7396): a phone that
            # autosaves every group, untouched ones as {}, neither fails nor re-marks them.
            continue
        touched.append((path, value))
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
    # Every problem comes back at once, each at its path, for the phone to mark them all; the
    # code names the first kind found (read-only, outside the supplement, invalid).
    fields: dict[str, list[checks.Text]] = {
        f"data.{p}": [checks.Text("Read-only", "来自权威数据源，不能修改")] for p in read_only
    }
    for p in locked:
        fields.setdefault(f"data.{p}", []).append(
            checks.Text("Not named in the supplement request", "不在补正范围内")
        )
    for path, messages in problems.fields.items():
        fields.setdefault(path, []).extend(messages)
    if read_only:
        raise FieldReadOnly(fields=fields)
    if locked:
        raise FieldLocked(fields=fields)
    if problems.fields:
        raise InvalidPatch(fields=fields)
    return touched


def patch(
    session: Session,
    deps: ApplicationDeps,
    *,
    account_id: str,
    app_id: str,
    if_match: int | tuple[int, ...],
    data_patch: dict[str, Any],
) -> Application:
    """Autosave part of the form. A stale If-Match (none of its revisions current) gets 412
    with the current revision."""
    app = owned(session, account_id, app_id, lock=True)
    # Not editable first: a phone holding a stale copy of a case submitted meanwhile (from the
    # other device) would reload on a 412 only to be refused; it learns why at once.
    if app.status not in states.EDITABLE:
        raise NotEditable(**status_params(app.status))
    if app.revision not in ((if_match,) if isinstance(if_match, int) else if_match):
        raise VersionConflict(details={"current_revision": app.revision})
    if_match = app.revision
    spec = spec_of(session, app)
    data_patch = _without_shown_masks(app.provenance or {}, data_patch)
    touched = _check_patch(spec, app, data_patch)
    # {} on a group changes nothing (RFC 7396), nor adds an empty group where there was none; the
    # save itself still counts (a new revision, the draft kept longer), as an empty one does.
    data_patch = _without_empty_groups(spec, data_patch)
    now = clock.now()
    before = decrypt_data(deps.encryptor, app.data_enc)
    data = merge_patch(before, data_patch)  # a copy: `before` stays as stored
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
    # A field the supplement opened, given a value (typed again as it was, too: the citizen
    # confirms it) or emptied. A null on a field already empty changes nothing: a phone that
    # autosaves the opened section with nulls for its empty inputs has not answered anything.
    answered = supplement_answered(app) if _gives_or_empties(spec, touched, before, data) else None
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
            **({"supplement": answered} if answered is not None else {}),
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


def _gives_or_empties(
    spec: forms.FormSpec, touched: list[tuple[str, Any]], before: dict[str, Any], after: dict[str, Any]
) -> bool:
    """Whether the autosave gave a value to a leaf it touched or emptied one that held a value."""
    return any(
        get_path(after, leaf) is not None or get_path(before, leaf) is not None
        for path, _ in touched
        for leaf in spec.leaves
        if leaf == path or leaf.startswith(path + ".")
    )


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
