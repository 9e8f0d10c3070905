"""What the phone sees of an application: the full view, compact list entries and the timeline.

Values prefilled from the verified identity or the account's phone are shown masked (their
provenance says `masked`); what the citizen typed is shown as typed. Labels follow the
request language.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from core import clock
from core.errors import Text
from domain.accounts.profile_cache import ProfileCache
from domain.applications import forms, notices, states
from domain.applications.deadlines import is_overdue, local_date
from domain.applications.deps import ApplicationDeps
from domain.applications.errors import InvalidCursor, UnknownStatus
from domain.applications.models import OUTBOX_DEAD, Application, ApplicationEvent, ForwardingOutbox
from domain.applications.prefill import decrypt_data, get_path
from domain.applications.service import consent_text, satisfied_materials, spec_of, supplement_fields
from domain.applications.submission import Submitted
from domain.catalog.models import Bundle
from domain.shared_data import views as shared_views

PROVINCE_WAITING = ("已提交，等待省平台接收", "Submitted, waiting for the provincial platform")
PROVINCE_DELAYED = (
    "省平台暂未接收，工作人员正在处理，无需重新提交",
    "Not yet taken by the provincial platform; staff are handling it, no need to submit again",
)
PROVINCE_RECEIVED = ("省平台已接收", "Received by the provincial platform")
_FORWARDED = (states.SUBMITTED, states.RESUBMITTED)  # sent (or being sent), not yet received


def _stalled(session: Session, apps: list[Any]) -> set[str]:
    """The ids of those of `apps` (sent, not yet received) whose forwarding gave up: a dead
    letter an operator must correct and replay. The citizen is told the case is delayed and
    being handled, not left "waiting". One query, and none when no app is waiting."""
    versions = {app.id: app.submission_version for app in apps if app.status in _FORWARDED}
    if not versions:
        return set()
    Out = ForwardingOutbox
    rows = session.execute(
        select(Out.application_id, Out.submission_version).where(
            Out.application_id.in_(versions), Out.kind.in_(("submit", "resubmit")), Out.state == OUTBOX_DEAD,
        )
    )  # fmt: skip
    return {app_id for app_id, version in rows if versions[app_id] == version}


def _province(app: Application, lang: str, *, stalled: bool = False) -> dict[str, Any] | None:
    """Whether the province has the case yet, with its receipt number once it has."""
    if app.status in _FORWARDED:
        zh, en = PROVINCE_DELAYED if stalled else PROVINCE_WAITING
        state = "delayed" if stalled else "waiting"
        return {"state": state, "label": en if lang == "en" else zh, "receipt_no": None}
    if app.province_receipt_no:
        zh, en = PROVINCE_RECEIVED
        return {
            "state": "received", "label": en if lang == "en" else zh, "receipt_no": app.province_receipt_no,
            "received_at": app.province_received_at.isoformat() if app.province_received_at else None,
        }  # fmt: skip
    return None


def _status(app: Application, lang: str, *, stalled: bool = False) -> dict[str, Any]:
    out = {
        "status": app.status,
        "status_label": states.label(app.status, lang),
        "province": _province(app, lang, stalled=stalled),
    }
    if app.result:
        zh, en = states.RESULT_LABELS[app.result]
        out["result"] = app.result
        out["result_label"] = en if lang == "en" else zh
    return out


def _due(app: Application, now: datetime) -> dict[str, Any]:
    return {
        "expected_completion": app.due_on.isoformat() if app.due_on else None,
        "overdue": is_overdue(app, now),
        "clock_paused": app.paused_on is not None and app.status not in states.FINAL,
    }


def bundle_names_en(session: Session, codes: set[str]) -> dict[str, str]:
    """The English names of these bundles, in one query (those the catalog has one for)."""
    if not codes:
        return {}
    rows = session.execute(select(Bundle.code, Bundle.published_document).where(Bundle.code.in_(codes)))
    return {code: document["name_en"] for code, document in rows if (document or {}).get("name_en")}


def service_name(
    session: Session, app: Application, lang: str, *, bundle_names: dict[str, str] | None = None
) -> str:
    """The item's or bundle's name in the request's language; Chinese when the catalog has no English.
    `bundle_names`: the English bundle names already read for a page (bundle_names_en)."""
    if lang != "en":
        return app.service_name
    if app.kind == "bundle":
        if bundle_names is None:
            bundle_names = bundle_names_en(session, {app.bundle_code} if app.bundle_code else set())
        return bundle_names.get(app.bundle_code or "") or app.service_name
    return spec_of(session, app).name_en or app.service_name


def _masked(data: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    """`data` with each value its provenance masks replaced by the masked form; `data` itself is
    left alone (only the objects on a masked value's path are copied: the rest is shared)."""
    shown = dict(data)
    for path, prov in provenance.items():
        if "masked" not in prov or get_path(shown, path) is None:
            continue
        parts = path.split(".")
        node = shown
        for part in parts[:-1]:
            copied = dict(node[part])  # this level's own copy, before anything is written to it
            node[part] = copied
            node = copied
        node[parts[-1]] = prov["masked"]
    return shown


def full(
    session: Session,
    deps: ApplicationDeps,
    app: Application,
    *,
    lang: str = "zh",
    known: Submitted | None = None,
) -> dict[str, Any]:
    """The full view; `known`: what the caller has just read of this application (its
    materials, sharing grant and decrypted data), not read again."""
    spec = spec_of(session, app)
    data = known.data if known is not None else decrypt_data(deps.encryptor, app.data_enc)
    shown = _masked(data, app.provenance)
    satisfied = known.satisfied if known is not None else satisfied_materials(session, app.id)
    supplement = app.supplement or {}
    materials = []
    for material_id, material in spec.materials.items():
        rows = satisfied.get(material_id, [])
        materials.append(
            {
                "id": material_id,
                "name": forms.material_name(material, lang),
                "requirement": material["requirement"],
                "condition": material.get("condition"),
                "accepts": {"ecert_types": material["ecert_types"], "shared_data": material["shared_data"]},
                "satisfied": bool(rows),
                "satisfied_by": [
                    {
                        "kind": r.kind,
                        "file_id": r.file_id,
                        "ref": r.ref,
                        "media_type": r.media_type,
                        "size": r.size,
                        "sha256": r.sha256,
                        "attached_at": r.attached_at.isoformat(),
                    }
                    for r in rows
                ],
                "editable": app.status == states.DRAFT
                or (
                    app.status == states.SUPPLEMENT_REQUESTED
                    and material_id in supplement.get("materials", [])
                ),
            }
        )
    body: dict[str, Any] = {
        "id": app.id,
        "kind": app.kind,
        "service_code": app.service_code,
        "bundle_code": app.bundle_code,
        "service_name": service_name(session, app, lang),
        "items": app.items,
        # A submission just made (`known`) has a fresh outbox row: nothing to look up.
        **_status(app, lang, stalled=known is None and app.id in _stalled(session, [app])),
        "revision": app.revision,
        "submission_version": app.submission_version,
        "case_number": app.case_number,
        "created_at": app.created_at.isoformat(),
        "updated_at": app.updated_at.isoformat(),
        "submitted_at": app.submitted_at.isoformat() if app.submitted_at else None,
        "draft_expires_at": (
            app.expires_at.isoformat() if app.status == states.DRAFT and app.expires_at else None
        ),
        **_due(app, clock.now()),
        "data": shown,
        "provenance": app.provenance,
        "prefill_missing": sorted(p for p in spec.prefill if p not in app.provenance),
        "materials": materials,
        "supplement": app.supplement,
        "editable_fields": (
            "all" if app.status == states.DRAFT
            else supplement_fields(app) if app.status == states.SUPPLEMENT_REQUESTED
            else []
        ),
        "identity_requirement": {
            "min_level": spec.requirement.min_level,
            "face_within_minutes": spec.requirement.face_within_minutes,
        },
    }  # fmt: skip
    if app.status == states.DRAFT:
        text, version = consent_text(spec)
        body["consent"] = {"text": text, "text_version": version}
    body["data_sharing"] = shared_views.sharing(
        session, app, spec, lang=lang, grant=known.grant if known is not None else shared_views.NOT_READ
    )
    return body


def form(session: Session, app: Application) -> dict[str, Any]:
    spec = spec_of(session, app)
    return {"schema": spec.schema, "ui": spec.ui, "prefill": spec.prefill}


def json_body(view: dict[str, Any]) -> bytes:
    """A view as the JSON bytes the phone receives (cached or not, one encoding)."""
    return json.dumps(view, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


# --- lists ----------------------------------------------------------------------------------


def _encode_cursor(app: Application) -> str:
    raw = json.dumps([app.created_at.isoformat(), app.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ID = re.compile(r"[0-9a-f-]{36}")  # application ids are UUID strings (core.db.new_id)


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, app_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:  # cursors carry their zone; a naive time cannot be compared
            raise ValueError(at)
        when = when.astimezone(UTC)  # out of range near year 1 or 9999: refused below
        if not isinstance(app_id, str) or not _ID.fullmatch(app_id):
            raise ValueError(app_id)
        return when, app_id
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidCursor() from exc


# The list shows a few columns of each row: select only those (no form data, provenance or
# encrypted blobs); the helpers above read them by attribute, as they read an Application.
_LIST_COLUMNS = (
    Application.id, Application.service_name, Application.service_code, Application.case_number,
    Application.status, Application.result, Application.province_receipt_no, Application.province_received_at,
    Application.created_at, Application.updated_at, Application.due_on, Application.paused_on,
    Application.kind, Application.bundle_code, Application.items,  # for the English name
    Application.submission_version,  # for "delayed"
)  # fmt: skip


# Newest first by when the application was begun, which never changes: ordered by the time of
# its last change, a case that moved while the citizen paged (an autosave on the other device,
# the department's stage) would jump ahead of the cursor onto a page already seen, and be
# missing from the pages that follow.
_ORDER = (Application.created_at.desc(), Application.id.desc())
_FIRST_PAGE = (
    select(*_LIST_COLUMNS)
    .where(Application.account_id == bindparam("account_id"))
    .order_by(*_ORDER)
    .limit(bindparam("limit"))
)


def listing(
    session: Callable[[], Session],
    *,
    account_id: str,
    statuses: list[str],
    cursor: str | None,
    limit: int,
    lang: str = "zh",
    cache: ProfileCache | None = None,
) -> bytes:
    """One page as its JSON body, newest first by creation (a case keeps its place while it
    changes). The first page of the unfiltered list (what the phone opens) is kept rendered in
    the per-account cache together with the limit, language and Beijing date it was rendered
    for (`overdue` moves only with the date); a request for another of those is answered from
    the database. `session` is called only then."""
    unknown = [s for s in statuses if s not in states.STATUSES]
    if unknown:
        listed = ", ".join(unknown)
        raise UnknownStatus(fields={"status": [Text(f"unknown: {listed}", f"未知的状态：{listed}")]})
    now = clock.now()
    cached = cache if not statuses and not cursor else None  # only the unfiltered first page
    stamp = b""
    if cached is not None:
        stamp = (
            json.dumps({"limit": limit, "lang": lang, "date": local_date(now).isoformat()}).encode() + b"\n"
        )
        raw = cached.get_raw(account_id, kind="applications")
        if raw is not None and raw.startswith(stamp):
            return raw[len(stamp) :]
    db = session()
    rows = _query_page(db, account_id, statuses, cursor, limit)
    bundles = (
        bundle_names_en(
            db, {app.bundle_code for app in rows[:limit] if app.kind == "bundle" and app.bundle_code}
        )
        if lang == "en"
        else {}
    )
    stalled = _stalled(db, rows[:limit])
    page = {
        "items": [
            {
                "id": app.id,
                "service_name": service_name(db, app, lang, bundle_names=bundles),
                "service_code": app.service_code,
                "case_number": app.case_number,
                **_status(app, lang, stalled=app.id in stalled),
                "updated_at": app.updated_at.isoformat(),
                **_due(app, now),
            }
            for app in rows[:limit]
        ],
        "next_cursor": _encode_cursor(rows[limit - 1]) if len(rows) > limit else None,
    }
    body = json_body(page)
    if cached is not None:
        cached.put_raw(account_id, stamp + body, kind="applications")
    return body


def _query_page(
    session: Session, account_id: str, statuses: list[str], cursor: str | None, limit: int
) -> list[Any]:
    if statuses or cursor:
        stmt = select(*_LIST_COLUMNS).where(Application.account_id == bindparam("account_id"))
        if statuses:
            stmt = stmt.where(Application.status.in_(statuses))
        if cursor:
            at, app_id = _decode_cursor(cursor)
            stmt = stmt.where(
                or_(Application.created_at < at, and_(Application.created_at == at, Application.id < app_id))
            )
        stmt = stmt.order_by(*_ORDER).limit(bindparam("limit"))
    else:
        stmt = _FIRST_PAGE  # the common ask: built once
    return list(session.connection().execute(stmt, {"account_id": account_id, "limit": limit + 1}))


def timeline(
    session: Session, app: Application, *, lang: str = "zh", citizen_notes: bool = True
) -> list[dict[str, Any]]:
    """Every status change; `citizen_notes=False` leaves out what the citizen wrote (a
    withdrawal's reason) for a reader who may see the case's progress but not the citizen's own
    words (an app with `applications.read` alone); the department's notes are progress."""
    rows = session.scalars(
        select(ApplicationEvent)
        .where(ApplicationEvent.application_id == app.id)
        .order_by(ApplicationEvent.seq)
    )
    return [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "from_status": e.from_status,
            "status": e.to_status,
            "status_label": states.label(e.to_status, lang),
            "actor": e.actor_type,
            "note": e.note if citizen_notes or e.actor_type != "citizen" else None,
            "details": e.details,
            **(
                {"asked": _asked(session, app, e.details, lang)}
                if e.to_status == states.SUPPLEMENT_REQUESTED
                else {}
            ),
        }
        for e in rows
    ]


def _asked(
    session: Session, app: Application, details: dict[str, Any] | None, lang: str
) -> list[dict[str, str]]:
    """What a supplement asked for, by name in the request's language: the details hold the
    catalog's material ids and the form's field paths, which tell a citizen nothing."""
    details = details or {}
    named = [
        {"kind": "material", **entry}
        for entry in notices.material_names(session, app, details.get("materials") or [])
    ] + [
        {"kind": "field", **entry} for entry in notices.field_names(session, app, details.get("fields") or [])
    ]
    return [
        {
            "kind": entry["kind"],
            "id": entry["id"],
            "name": (entry.get("name_en") if lang == "en" else None) or entry["name"],
        }
        for entry in named
    ]
