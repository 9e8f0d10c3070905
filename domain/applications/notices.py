"""What the citizen is told when their case moves: one notice per change, for the notifications layer.

The notifications layer (notifications/) turns each notice into messages on the citizen's
channels; here we only decide which changes are worth telling and with what parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from domain.applications import states
from domain.applications.models import Application, ApplicationNotice

# Status reached → notice type. Moves not listed (e.g. in_review) are on the timeline only.
NOTICE_TYPES = {
    states.RECEIVED: "case_received",
    states.ACCEPTED: "case_accepted",
    states.SUPPLEMENT_REQUESTED: "supplement_requested",
    states.NOT_ACCEPTED: "case_refused",
    states.COMPLETED: "case_completed",
    states.RESULT_DELIVERED: "result_delivered",
}


def emit(
    session: Session, app: Application, to: str, *, note: str | None, details: dict[str, Any], key: str | None
) -> ApplicationNotice | None:
    """Add the notice for a move to `to` (if it is one the citizen hears about)."""
    event_type = NOTICE_TYPES.get(to)
    if event_type is None:
        return None
    params: dict[str, Any] = {
        "case_number": app.case_number,
        "service_name": app.service_name,
        "status": to,
        "status_label": states.label(to),
    }
    if to == states.SUPPLEMENT_REQUESTED:
        materials = material_names(session, app, details.get("materials") or [])
        fields = details.get("fields") or []
        params.update(
            materials=materials, fields=fields, field_names=field_names(session, app, fields), reason=note
        )
    elif to == states.NOT_ACCEPTED:
        params["reason"] = note
    elif to == states.COMPLETED:
        params.update(result=details.get("result"), reason=note)
    elif to == states.RECEIVED:
        params["receipt_no"] = app.province_receipt_no
    # The same change notifies once: keyed by the province's event id, or by the revision.
    dedupe = f"{app.id}:{key}" if key else f"{app.id}:r{app.revision}:{to}"
    notice = ApplicationNotice(
        dedupe_key=dedupe[:160], account_id=app.account_id, application_id=app.id,
        event_type=event_type, params=params, created_at=clock.now(),
    )  # fmt: skip
    session.add(notice)
    return notice


def delayed(
    session: Session, app: Application, *, submission_version: int, row_id: str
) -> ApplicationNotice | None:
    """Tell the citizen that forwarding gave up on their submission (a dead letter staff will
    correct and replay), so they neither wait in silence nor submit again. Once per outbox row:
    a replay that dies again tells them nothing new. None when the case has moved on since."""
    if (
        app.status not in (states.SUBMITTED, states.RESUBMITTED)
        or app.submission_version != submission_version
    ):
        return None
    dedupe = f"{app.id}:delayed:{row_id}"
    if session.scalar(select(ApplicationNotice.id).where(ApplicationNotice.dedupe_key == dedupe)):
        return None
    notice = ApplicationNotice(
        dedupe_key=dedupe, account_id=app.account_id, application_id=app.id, event_type="case_delayed",
        params={
            "case_number": app.case_number, "service_name": app.service_name, "status": app.status,
            "status_label": states.label(app.status),
        },
        created_at=clock.now(),
    )  # fmt: skip
    session.add(notice)
    return notice


def field_names(session: Session, app: Application, paths: list[Any]) -> list[dict[str, str]]:
    """The form's labels of the fields a supplement names: a message naming only materials (or
    "相关材料" when only fields are asked) sends the citizen looking for something to upload."""
    from domain.applications.service import spec_of

    try:
        ui = spec_of(session, app).ui.get("fields") or {}
    except Exception:  # the item version is gone: the paths are better than nothing
        ui = {}
    named = []
    for path in paths:
        label = (ui.get(str(path)) or {}).get("label") or {}
        zh = label.get("zh") if isinstance(label, dict) else None
        entry = {"id": str(path), "name": str(zh or path)}
        if isinstance(label, dict) and label.get("en"):
            entry["name_en"] = str(label["en"])
        named.append(entry)
    return named


def material_names(session: Session, app: Application, materials: list[Any]) -> list[dict[str, str]]:
    """The province names materials by id; the citizen needs their names from the item."""
    from domain.applications.service import spec_of

    try:
        known = spec_of(session, app).materials
    except Exception:  # the item version is gone: ids are better than nothing
        known = {}
    named = []
    for material in materials:
        given = material if isinstance(material, dict) else {}
        mid = str(given.get("id") or given.get("code") or given.get("name") or "") if given else str(material)
        item = known.get(mid, {})
        entry = {"id": mid, "name": str(given.get("name") or item.get("name") or mid)}
        # The English name for an English inbox, from the province's text or the catalog.
        english = given.get("name_en") or (item.get("name_en") if not given.get("name") else "")
        if english:
            entry["name_en"] = str(english)
        named.append(entry)
    return named
