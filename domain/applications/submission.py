"""Submission: submit a draft (or resubmit after a supplement request) and withdraw a case.

Views call these functions; every one takes the session, commits its own transaction and checks
that the application belongs to the account (another account's application is "not found").
Each writes the `forwarding_outbox` row the province adapter sends in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import constraint_of, new_id, take_write_lock
from core.db_statements import insert_rows, load_for_update, pending_update, read_rows
from domain.accounts import profile_cache
from domain.accounts.models import Account
from domain.applications import checks, forms, states
from domain.applications.deadlines import on_transition
from domain.applications.deps import ApplicationDeps
from domain.applications.errors import (
    ApplicationNotFound,
    CaseNumberRetry,
    ChannelNotOffered,
    IllegalTransition,
    ProvinceUpdatePending,
    SubmissionInvalid,
)
from domain.applications.models import (
    OUTBOX_CANCELLED,
    OUTBOX_DEAD,
    Application,
    ApplicationFile,
    ApplicationMaterial,
    ForwardingOutbox,
)
from domain.applications.prefill import (
    SOURCE_USER,
    PrefillContext,
    decrypt_data,
    encrypt_data,
    fill_identity,
    get_path,
    unverified_identity_fields,
)
from domain.applications.service import (
    BY_ID,
    MATERIALS,
    Satisfying,
    consent_text,
    owned,
    spec_of,
    status_params,
    supplement_fields,
)
from domain.applications.timeline import event_row
from domain.forwarding.models import WAITING, ProvinceEvent
from domain.identity.models import ConsentRecord
from domain.ledger import service as ledger
from domain.ledger.models import DEPARTMENT, DataAccess
from domain.shared_data.models import SharingGrant
from domain.shared_data.views import GrantTimes

CONSENT_PURPOSE = "application_share"


# Built once (the expression and its cache key), like the lookups in service.py.
_SUBMITTING = (
    select(
        *Application.__table__.columns,  # as core.db_statements.load_for_update reads them
        SharingGrant.granted_at,
        SharingGrant.revoked_at,
    )  # fmt: skip
    .outerjoin(SharingGrant, SharingGrant.application_id == Application.id)  # for the view
    .where(Application.id == bindparam("app_id"), Application.account_id == bindparam("account_id"))
    .with_for_update(of=Application.__table__)
)
_M, _F = ApplicationMaterial.__table__, ApplicationFile.__table__


# Submit judges the applicant's identity level and face freshness from the account row (not the
# token) as it is once the application is locked: read with the materials, in the statement after
# the locking read. Read in the locking statement, they came from that statement's snapshot,
# taken before the lock was waited for (PostgreSQL evaluates the other tables of a SELECT ... FOR
# UPDATE OF one table that way, like a subquery), so an identity displaced or merged away while
# the submission queued behind an autosave or an upload still counted. One row even without
# materials (the account's, outer-joined to them).
_A = Account.__table__
_SUBMIT_MATERIALS = (
    select(_A.c.identity_level, _A.c.live_checked_at, *MATERIALS.selected_columns)
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


def _fill_identity(
    session: Session, deps: ApplicationDeps, app: Application, spec: forms.FormSpec,
    data: dict[str, Any], request_id: str | None,
) -> None:  # fmt: skip
    ctx = PrefillContext(
        session=session, encryptor=deps.encryptor, account_id=app.account_id, application_id=app.id,
        item_codes=tuple(code for code, _ in spec.items), now=clock.now(), request_id=request_id,
    )  # fmt: skip
    provenance = fill_identity(ctx, spec, data, app.provenance or {})
    if provenance is not None:
        app.provenance = provenance
        app.data_enc = encrypt_data(deps.encryptor, data)


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
    session: Session, deps: ApplicationDeps, account_id: str, satisfied: dict[str, list[Satisfying]],
    only: set[str] | None,
) -> set[str]:  # fmt: skip
    """Ids of attached e-certificate references the library no longer vouches for, of the
    materials in `only` (None: all). A resubmission judges only the materials the supplement
    names: the department reviewed the others, and the citizen may not replace them (a
    certificate revoked meanwhile would leave the case stuck between 422 and 409)."""
    rows = [
        r
        for material_id, rows in satisfied.items()
        if only is None or material_id in only
        for r in rows
        if r.kind == "ecert" and r.ref
    ]
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
    if target == states.RESUBMITTED and session.scalar(_NEWS_WAITING, {"app_id": app.id}):
        # As for a withdrawal: the province's word not applied yet may have closed the case (a
        # supplement never given ends it); a resubmission overtaking it would leave the case
        # "resubmitted" for good. Judge again once it is applied.
        session.rollback()
        raise ProvinceUpdatePending()
    spec = spec_of(session, app)
    if channel not in spec.channels:
        # A draft resumes on any channel, but it is submitted only on one the item offers (a
        # draft begun in the app, resumed in a mini-program the item is not offered on).
        session.rollback()
        raise ChannelNotOffered(details={"channels": sorted(spec.channels)})
    data = decrypt_data(deps.encryptor, app.data_enc)
    identity_level, live_checked_at, satisfied = _identity_and_materials(session, account_id, app.id)
    if unverified_identity_fields(spec, app.provenance):
        # Made before the citizen verified: what was typed into the identity's fields is
        # replaced by the verified identity, so the department never gets another name.
        _fill_identity(session, deps, app, spec, data, request_id)
    problems = checks.Problems()
    named = None if target == states.SUBMITTED else set((app.supplement or {}).get("materials") or [])
    revoked = _unusable_certificates(session, deps, account_id, satisfied, named)
    for material_id, rows in list(satisfied.items()):
        left = [r for r in rows if r.id not in revoked]
        if len(left) < len(rows) and not left:
            del satisfied[material_id]
            if spec.materials.get(material_id, {}).get("requirement") == "required":
                checks.certificate_not_valid(problems, spec, material_id)
        elif len(left) < len(rows):
            satisfied[material_id] = left
    checks.check_data(problems, spec.validator, data)
    editable = set(supplement_fields(app)) if target == states.RESUBMITTED else None
    checks.check_visible_text(problems, spec.schema, data, only=editable)
    checks.check_materials(problems, spec, set(satisfied))
    if target == states.RESUBMITTED:
        checks.check_supplement_answered(problems, app.supplement)
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
    app.submitted_channel = channel
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
    kind = "submit" if target == states.SUBMITTED else "resubmit"
    rows.append(_outbox_row(app, kind, now, profile=deps.forwarding_profile()))
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
        if constraint_of(exc) != "uq_applications_case_number":
            raise
        session.rollback()
        deps.case_numbers.forget_reserved()  # a lost reservation: this process's blocks are stale
        raise CaseNumberRetry() from exc
    profile_cache.mark_changed(session, account_id)  # a Core update: the ORM does not see it
    profile_cache.mark_application_changed(session, app.id)
    session.commit()
    return Submitted(app, satisfied, GrantTimes(granted_at, revoked_at) if granted_at else None, data)


def _outbox_row(
    app: Application, kind: str, now: datetime, *, profile: str, note: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The row the province adapter sends: one per submission, resubmission or withdrawal, for
    the configured province profile (the forwarder claims only its profile's rows)."""
    return ForwardingOutbox.__table__, {
        "id": new_id(), "application_id": app.id, "kind": kind, "submission_version": app.submission_version,
        "case_number": app.case_number, "state": "pending", "attempts": 0, "created_at": now,
        "next_attempt_at": now, "note": note, "profile": profile,
    }  # fmt: skip


# A receipt ("received") changes nothing a withdrawal depends on; any other stage may (accepted).
_NEWS_WAITING = select(
    exists().where(
        ProvinceEvent.application_id == bindparam("app_id"),
        ProvinceEvent.state == WAITING,
        ProvinceEvent.stage != "received",
    )
)


def withdraw(
    session: Session,
    deps: ApplicationDeps,
    *,
    account_id: str,
    app_id: str,
    reason: str | None,
    request_id: str | None = None,
) -> Application:
    app = owned(session, account_id, app_id, lock=True)
    if not states.withdrawable(app.status, accepted=app.clock_started_on is not None):
        raise IllegalTransition(**status_params(app.status))
    if session.scalar(_NEWS_WAITING, {"app_id": app.id}):
        # The province has spoken and its word is not applied yet (the applier runs within
        # moments; an event after a gap waits for reconciliation): it may have accepted the case,
        # after which a withdrawal is refused. Judge again once it is applied.
        session.rollback()
        raise ProvinceUpdatePending()
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
    rows = [event]
    # The province has the case once it has spoken of it (any stage after "submitted"), or may
    # have it once a send of it was attempted: then it hears of the withdrawal too.
    if _cancel_unsent(session, app.id) or previous != states.SUBMITTED:
        rows.insert(0, _outbox_row(app, "withdraw", now, profile=deps.forwarding_profile(), note=reason))
    insert_rows(session, rows, {"seq_application_id": app.id})
    session.commit()
    return app


_OUT = ForwardingOutbox.__table__.c
# The case's submissions not under way: waiting to be sent (for the first time, again after a
# failed attempt, or again after an operator's replay) and dead letters. With the case withdrawn
# none of them is to go out: a send the province may have got is stopped by the withdrawal, one
# it never got needs nothing. A row the forwarder has claimed meanwhile is "sending" and stays
# (the withdrawal waits for it; the statement re-checks the state of a row it waited for).
_CANCEL_UNSENT = (
    update(ForwardingOutbox.__table__)
    .where(
        _OUT.application_id == bindparam("app_id"),
        _OUT.kind != "withdraw",
        or_(_OUT.state == "pending", _OUT.state == "retrying", _OUT.state == OUTBOX_DEAD),
    )
    .values(state=OUTBOX_CANCELLED, next_attempt_at=None, locked_until=None)
)
_EVER_SENT = select(exists().where(_OUT.application_id == bindparam("app_id"), _OUT.attempts > 0))


def _cancel_unsent(session: Session, app_id: str) -> bool:
    """Cancel the withdrawn case's submissions that are not to go out; whether the province may
    have heard of the case (a row of it was sent at least once), so that a withdrawal must
    follow. A case the province never heard of is withdrawn here alone; one whose only sends
    were refused gets a withdrawal the province answers with "no such case", which the
    forwarder takes as done."""
    session.execute(_CANCEL_UNSENT, {"app_id": app_id})
    return bool(session.scalar(_EVER_SENT, {"app_id": app_id}))
