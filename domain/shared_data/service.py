"""Fetch shared data and certificates for a draft, with the citizen's consent ("数据多跑路").

`authorize` records the citizen's consent for one application, registers the authorisation with
the exchange (统一受理、平台授权), queries every data item the form and materials can use, fills
the bound fields (verified, read-only, with provenance) and attaches the materials that shared
records and valid certificates stand in for. Conditional items come back "pending"; `poll_pending`
(sweeper) asks again until the department answers, then updates the draft. Every query and
every certificate used is written to the citizen's data-use ledger. `purge_finished` deletes the
fetched values once the application no longer needs them and revokes the authorisation.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from core import clock
from core.db import lock_one, new_id
from core.masking import mask_name
from core.text import shorten
from domain.accounts import profile_cache
from domain.applications import states
from domain.applications.forms import FormSpec
from domain.applications.models import Application, ApplicationMaterial, ApplicationNotice
from domain.applications.prefill import SOURCE_USER, Filled, decrypt_data, encrypt_data, set_path, unset_path
from domain.applications.service import owned, spec_of
from domain.calendar.service import add_working_days
from domain.catalog.sources import SHARED_DATASETS
from domain.identity.documents import mask_id_number
from domain.identity.models import ConsentRecord
from domain.ledger import service as ledger
from domain.ledger.models import YIWANG
from domain.shared_data import models as m
from domain.shared_data.deps import GovDataDeps
from domain.shared_data.errors import (
    ConsentOutdated,
    ConsentRequired,
    DraftOnly,
    NothingToShare,
    SourceUnavailable,
)
from domain.shared_data.mapping import EDITABLE_SOURCES, FIELD_SOURCES, SENSITIVE_SOURCES, value_at
from domain.shared_data.plan import SharingPlan, plan_for
from domain.shared_data.views import text_for
from domain.wallet.holder import Holder, holder
from domain.wallet.summary import usable
from domain.wallet.sync import sync
from integrations.govdata.client import GovDataError

log = logging.getLogger(__name__)
CONSENT_PURPOSE = "data-sharing"
APPROVAL_WORKING_DAYS = 10  # 3 to review + the department's approval, at most 10 working days
VALUES_PURPOSE = "shared-data"


def authorize(
    session: Session,
    deps: GovDataDeps,
    *,
    account_id: str,
    app_id: str,
    accepted: bool,
    text_version: str | None,
    channel: str,
    ip: str | None = None,
    request_id: str | None = None,
) -> Application:
    app = owned(session, account_id, app_id, lock=True)
    if app.status != states.DRAFT:
        raise DraftOnly()
    spec = spec_of(session, app)
    plan, text, version = text_for(session, spec)
    if plan.empty:
        raise NothingToShare()
    if not accepted:
        raise ConsentRequired(details={"text": text, "text_version": version})
    if text_version != version:
        raise ConsentOutdated(details={"text": text, "text_version": version})
    who = holder(session, deps, account_id, why="shared-data", request_id=request_id)
    now = clock.now()
    grant = session.scalar(select(m.SharingGrant).where(m.SharingGrant.application_id == app.id))
    consent = ConsentRecord(
        id=new_id(),
        account_id=account_id,
        purpose=CONSENT_PURPOSE,
        text_version=version,
        channel=channel,
        given_at=now,
        ip=ip,
        request_id=request_id,
    )
    session.add(consent)
    session.flush()
    expires = now + timedelta(days=deps.grant_days)
    # The earlier authorisation is replaced, never left open: withdrawn first, and when the
    # exchange cannot take that now, the citizen is asked to try again (503) before a second
    # authorisation exists that nothing would withdraw later.
    if grant is not None and grant.remote_id and grant.revoked_at is None and not revoke(deps, grant, now):
        session.rollback()
        raise SourceUnavailable()
    remote_id = None
    if plan.datasets:
        try:
            remote_id = deps.exchange.authorize(
                subject={"id_number": who.id_number, "name": who.name},
                datasets=list(plan.datasets),
                purpose={"application_id": app.id, "service_code": app.service_code or app.bundle_code or ""},
                consent={"record_id": consent.id, "given_at": now.isoformat(), "text_version": version},
                expires_at=int(expires.timestamp()),
            )
        except GovDataError as exc:
            session.rollback()
            raise SourceUnavailable() from exc
    if grant is None:
        grant = m.SharingGrant(
            account_id=account_id, application_id=app.id, consent_id=consent.id, granted_at=now
        )
        session.add(grant)
    grant.consent_id, grant.remote_id, grant.expires_at, grant.revoked_at = (
        consent.id,
        remote_id,
        expires,
        None,
    )
    grant.datasets, grant.certificate_types = list(plan.datasets), list(plan.certificate_types)
    session.flush()
    # A new authorisation fetches everything afresh: earlier references of this kind go.
    session.execute(delete(m.SharedRecord).where(m.SharedRecord.application_id == app.id))
    profile_cache.mark_application_changed(session, app.id)  # Core deletes: the ORM does not see them
    session.execute(
        delete(ApplicationMaterial).where(
            ApplicationMaterial.application_id == app.id, ApplicationMaterial.kind.in_(("shared", "ecert"))
        )
    )
    records = [_query(session, deps, grant, app, who, d, now, spec.region) for d in plan.datasets]
    data = decrypt_data(deps.encryptor, app.data_enc)
    provenance = dict(app.provenance)
    # ... and the values the earlier records filled go with them: a dataset the department now
    # refuses (or that is pending again) must not stay in the form as verified and read-only.
    for path in [
        p for p, filled in provenance.items() if str(filled.get("source", "")).startswith("exchange:")
    ]:
        unset_path(data, path)
        del provenance[path]
    for record in records:
        _apply(session, deps, app, spec, plan, record, data, provenance)
    _attach_certificates(session, deps, app, spec, who, now)
    _save(deps, app, data, provenance, now)
    # The citizen worked on the draft (authorised, and it was filled): its expiry starts again,
    # as after a save or an upload. A record arriving later on its own (poll_pending) does not.
    app.expires_at = now + timedelta(days=deps.draft_ttl_days)
    session.commit()
    return app


def _query(
    session: Session,
    deps: GovDataDeps,
    grant: m.SharingGrant,
    app: Application,
    who: Holder,
    dataset: str,
    now: datetime,
    region: str,
) -> m.SharedRecord:
    row = m.SharedRecord(
        grant_id=grant.id,
        application_id=app.id,
        account_id=app.account_id,
        dataset=dataset,
        requested_at=now,
        meta={},
    )
    try:
        answer = deps.exchange.query(
            authorization_id=grant.remote_id, dataset=dataset, id_number=who.id_number, application_id=app.id
        )
    except GovDataError as exc:
        log.warning(
            "shared data query failed",
            extra={"dataset": dataset, "code": exc.code, "retryable": exc.retryable},
        )
        row.status, row.reason = m.UNAVAILABLE, (exc.code or "unavailable")[:200]
        session.add(row)
        return row
    _take(deps, row, answer, now)
    if answer.status == m.PENDING:
        row.ticket = answer.ticket
        row.next_poll_at = now + timedelta(seconds=deps.poll_seconds)
        row.expected_by = add_working_days(
            session, clock.local_date(now), APPROVAL_WORKING_DAYS, region=region
        )
    session.add(row)
    _used(session, app, now, "exchange", f"dataset:{dataset}", SHARED_DATASETS[dataset][0], "")
    return row


def _used(session: Session, app: Application, now: datetime, source: str, resource: str, name: str,
          what: str) -> None:  # fmt: skip
    """The ledger line for data this platform used for `app` (`what`: the material, if any)."""
    ledger.record(
        session, account_id=app.account_id, at=now, accessor_type=YIWANG, accessor_name="一网通办平台",
        source=source, resource=resource, resource_name=name,
        purpose=f"办理「{app.service_name}」" + (f"：{what}" if what else ""), application_id=app.id,
    )  # fmt: skip


def _take(deps: GovDataDeps, row: m.SharedRecord, answer: Any, now: datetime) -> None:
    """Record an answer; only a pending one is asked about again (the caller schedules it)."""
    row.status = answer.status if answer.status in m.STATUS_LABELS else m.UNAVAILABLE
    row.reason = shorten(answer.reason, 200) if answer.reason else answer.reason  # the department's words
    row.next_poll_at = None
    if row.status == m.NO_RECORD:
        row.retrieved_at = now
    if answer.status == m.FOUND and isinstance(answer.record, dict):
        row.remote_record_id = answer.record_id
        row.values_enc = deps.encryptor.encrypt(
            json.dumps(answer.record, ensure_ascii=False), purpose=VALUES_PURPOSE
        )
        row.retrieved_at = now


def _apply(
    session: Session,
    deps: GovDataDeps,
    app: Application,
    spec: FormSpec,
    plan: SharingPlan,
    row: m.SharedRecord,
    data: dict[str, Any],
    provenance: dict[str, Any],
) -> bool:
    """Fill the fields this record answers and attach the materials it stands in for; True if any.

    A material proves by a record (a marriage registration) or, with `shared_proof: no_record`,
    by the exchange having none (本市无自有住房证明).
    """
    proves = {m.FOUND: "record", m.NO_RECORD: "no_record"}.get(row.status)
    if proves is None or row.retrieved_at is None:
        return False
    used = False
    for material_id, material in spec.materials.items():
        if row.dataset in material["shared_data"] and material.get("shared_proof", "record") == proves:
            ref = row.remote_record_id or f"no_record:{row.dataset}"
            session.add(
                ApplicationMaterial(
                    application_id=app.id, material_id=material_id, kind="shared", ref=ref[:128],
                    attached_at=row.retrieved_at,
                )
            )  # fmt: skip
            used = True
    if row.status != m.FOUND or row.values_enc is None:
        return used
    record = json.loads(deps.encryptor.decrypt_bytes(row.values_enc, purpose=VALUES_PURPOSE))
    for path, source in plan.fields.items():
        dataset, key = FIELD_SOURCES[source]
        value = value_at(record, key) if dataset == row.dataset else None
        if value is None or (path in spec.leaves and not spec.accepts(path, value)):
            continue  # nothing, or not in the form's terms: the citizen fills it in
        if source in EDITABLE_SOURCES and (provenance.get(path) or {}).get("source") == SOURCE_USER:
            continue  # the citizen chose otherwise (a payout account): authorising again keeps it
        masked = _masked(SENSITIVE_SOURCES.get(source), str(value))
        set_path(data, path, value)
        provenance[path] = Filled(
            value, f"exchange:{row.dataset}", row.remote_record_id, row.retrieved_at, True,
            source not in EDITABLE_SOURCES, masked,
        ).provenance()  # fmt: skip
        used = True
    return used


# Certificates about a child: a parent applies with the child's (the youngest first), never with
# their own birth or vaccination certificate.
CHILD_TYPES = frozenset({"11100000000014303H001", "11100000000014303H002"})


def _candidates(rows: list[Any], types: list[str]) -> list[Any]:
    """Certificates that may stand in for a material accepting `types`, in the order to try them."""
    own = [r for r in rows if r.type_code in types and r.own and r.type_code not in CHILD_TYPES]
    kids = [r for r in rows if r.type_code in types and not r.own and r.type_code in CHILD_TYPES]
    kids.sort(key=lambda r: r.issued_on or date.min, reverse=True)
    return own + kids


def _masked(kind: str | None, value: str) -> str | None:
    if kind == "id_number":
        return mask_id_number(value)
    if kind == "name":
        return mask_name(value)
    if kind == "account":
        return "*" * (len(value) - 4) + value[-4:]
    return None


def _attach_certificates(
    session: Session, deps: GovDataDeps, app: Application, spec: FormSpec, who: Holder, now: datetime
) -> None:
    wanted = {t for mat in spec.materials.values() for t in mat["ecert_types"]}
    if not wanted:
        return
    try:
        rows, stale = sync(session, deps, who, purpose="application")
    except SourceUnavailable:
        return
    if stale:
        return  # a certificate may satisfy a material only as the library states it now
    today = clock.local_date(now)
    for material_id, material in spec.materials.items():
        for row in _candidates(rows, material["ecert_types"]):
            if usable(row, today):
                session.add(
                    ApplicationMaterial(
                        application_id=app.id,
                        material_id=material_id,
                        kind="ecert",
                        ref=row.identifier[:128],
                        attached_at=now,
                    )
                )
                _used(session, app, now, "ecert", f"certificate:{row.identifier}", row.type_name,
                      material["name"])  # fmt: skip
                break


def _save(
    deps: GovDataDeps, app: Application, data: dict[str, Any], provenance: dict[str, Any], now: datetime
) -> None:
    app.data_enc = encrypt_data(deps.encryptor, data)
    app.provenance = provenance
    app.revision += 1
    app.updated_at = now


# --- pending records ------------------------------------------------------------------------


def poll_pending(session: Session, deps: GovDataDeps, *, limit: int = 200) -> int:
    """Ask the exchange about pending records that are due; update drafts whose record arrived.

    The due records are claimed first (their next poll moved a poll interval on; rows another
    sweeper is claiming are skipped), so sweepers running at once share them out. Each is asked
    about with no lock held, then applied in a transaction of its own that locks the application
    and then the record, as every other write to them does (a PATCH, submit, a new consent,
    deleting the draft): a draft edited, submitted or re-consented meanwhile is seen as it is
    now, never overwritten with what was read before.
    """
    now = clock.now()
    claimed = session.execute(
        select(
            m.SharedRecord.id, m.SharedRecord.application_id, m.SharedRecord.grant_id, m.SharedRecord.ticket
        )
        .where(m.SharedRecord.status == m.PENDING, m.SharedRecord.next_poll_at <= now)
        .order_by(m.SharedRecord.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if claimed:
        session.execute(
            update(m.SharedRecord)
            .where(m.SharedRecord.id.in_([c.id for c in claimed]))
            .values(next_poll_at=now + timedelta(seconds=deps.poll_seconds))
        )
    session.commit()
    resolved = 0
    for c in claimed:
        try:
            resolved += _poll_one(session, deps, *c)
        except (OperationalError, InterfaceError):
            raise  # the database is away: the sweeper's caller logs it once
        except Exception:  # one record must not hold up the others, nor the purge after the poll
            session.rollback()
            log.exception(
                "shared-data record not applied",
                extra={"record_id": c.id, "alert": "shared_data.poll_failed"},
            )
    return resolved


def _poll_one(
    session: Session, deps: GovDataDeps, record_id: str, app_id: str, grant_id: str, ticket: str | None
) -> int:
    """1 when the record was resolved (found, no record, unavailable at the exchange), else 0."""
    grant = session.get(m.SharingGrant, grant_id, populate_existing=True)  # not a copy from earlier
    answer = None
    if grant is not None and grant.revoked_at is None and grant.remote_id and ticket:
        remote_id = grant.remote_id
        session.commit()  # no transaction open while the exchange answers
        try:
            answer = deps.exchange.ticket(authorization_id=remote_id, ticket=ticket)
        except GovDataError as exc:
            if exc.retryable:
                return 0  # asked again at the next poll
            answer = None  # the exchange's final word: unavailable (below)
        if answer is not None and answer.status == m.PENDING:
            return 0
    app = lock_one(session, Application, Application.id == app_id)  # the application, then the record
    row = lock_one(session, m.SharedRecord, m.SharedRecord.id == record_id)
    grant = session.get(m.SharingGrant, grant_id, populate_existing=True)
    if row is None or row.status != m.PENDING or row.ticket != ticket:
        session.rollback()  # resolved by another sweeper, or replaced by a new consent meanwhile
        return 0
    if answer is None or grant is None or grant.revoked_at is not None:
        row.status, row.next_poll_at = m.UNAVAILABLE, None
        if answer is None and app is not None and grant is not None and grant.revoked_at is None:
            # The exchange's final refusal of the ticket: the citizen, told to wait for it, is
            # told to provide it instead (a withdrawn consent needs no word).
            _resolved(session, deps, row, app, clock.now())
        session.commit()
        return 0
    now = clock.now()
    _take(deps, row, answer, now)
    if app is not None:
        _resolved(session, deps, row, app, now)
    session.commit()
    return 1


def _resolved(
    session: Session, deps: GovDataDeps, row: m.SharedRecord, app: Application, now: datetime
) -> None:
    used = False
    if app.status == states.DRAFT and row.status in (m.FOUND, m.NO_RECORD):
        spec = spec_of(session, app)
        plan = plan_for(spec.prefill, spec.materials)
        data = decrypt_data(deps.encryptor, app.data_enc)
        provenance = dict(app.provenance)
        used = _apply(session, deps, app, spec, plan, row, data, provenance)
        if used:
            _save(deps, app, data, provenance, now)
    # "Ready" when the answer filled or proved something (a record, or the absence a material
    # needed); otherwise the citizen is told to provide it. A case submitted meanwhile took
    # nothing from the answer and needs nothing more: no word.
    if app.status != states.DRAFT:
        return
    event = "shared_data_ready" if used else "shared_data_unavailable"
    session.add(
        ApplicationNotice(
            # Per record: a new consent fetches the dataset afresh (a new record), and its answer
            # is news again.
            dedupe_key=f"{app.id}:shared:{row.dataset}:{row.status}:{row.id}"[:160],
            account_id=app.account_id,
            application_id=app.id,
            event_type=event,
            created_at=now,
            params={
                "service_name": app.service_name,
                "case_number": app.case_number,
                "dataset": row.dataset,
                "dataset_name": SHARED_DATASETS.get(row.dataset, (row.dataset,))[0],
                # Worded per language by notifications.events.
                "status": "not_usable" if row.status == m.FOUND and not used else row.status,
                "reason": row.reason,
            },
        )
    )


# --- retention ------------------------------------------------------------------------------


def purge_finished(session: Session, deps: GovDataDeps, *, limit: int = 500) -> int:
    """Delete fetched values the application no longer needs; revoke its exchange authorisation.

    Authorisations of drafts that were deleted (by the citizen or the draft purge) are revoked
    here too.

    Needed while the application is a draft or open; once it is finished (final state) plus
    `retention_days`, or gone, the values are deleted. What the citizen submitted stays in the
    application itself (that is the record of the case), not here.
    """
    cutoff = clock.now() - timedelta(days=deps.retention_days)
    finished = and_(Application.status.in_(states.FINAL), Application.updated_at <= cutoff)
    rows = session.execute(
        select(m.SharedRecord, Application.status, Application.updated_at)
        .join(Application, Application.id == m.SharedRecord.application_id)
        .where(m.SharedRecord.purged_at.is_(None), finished)
        .limit(limit)
    ).all()
    now = clock.now()
    grants: set[str] = set()
    for row, _, _ in rows:
        row.values_enc, row.purged_at, row.status, row.next_poll_at = None, now, m.PURGED, None
        grants.add(row.grant_id)
    # A deleted or purged draft took its fetched values with it; its authorisation at the
    # exchange is closed here, not left open until it expires.
    grants.update(
        session.scalars(
            select(m.SharingGrant.id)
            .where(m.SharingGrant.application_id.is_(None), m.SharingGrant.revoked_at.is_(None))
            .limit(limit)
        )
    )
    # A finished case's authorisation the exchange could not take on an earlier pass (busy):
    # its records are purged by now, so it is found by itself and tried again, not left open.
    grants.update(
        session.scalars(
            select(m.SharingGrant.id)
            .join(Application, Application.id == m.SharingGrant.application_id)
            .where(m.SharingGrant.revoked_at.is_(None), finished)
            .limit(limit)
        )
    )
    for grant_id in grants:
        grant = session.get(m.SharingGrant, grant_id)
        if grant is not None and grant.revoked_at is None:
            revoke(deps, grant, now)
    session.commit()
    return len(rows)


def revoke(deps: GovDataDeps, grant: m.SharingGrant, now: datetime) -> bool:
    """Withdraw the exchange authorisation; False (nothing marked) when the exchange could not
    take it now and it must be tried again (the sweeper's next pass; a new consent waits)."""
    if grant.remote_id:
        try:
            deps.exchange.revoke(grant.remote_id)
        except GovDataError as exc:
            if exc.retryable:
                return False
    grant.revoked_at = now
    return True


def for_application(session: Session, app_id: str) -> list[m.SharedRecord]:
    return list(session.scalars(select(m.SharedRecord).where(m.SharedRecord.application_id == app_id)))
