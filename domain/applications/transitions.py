"""Moves of the handling side: the province's stages (callbacks) or an operator recording one.

One entry point, `advance`, for both. It refuses moves outside the state machine, applies an
event with the same external id once, keeps the due-date clock, and records what the citizen
must add when a supplement is requested (only those fields and materials become editable).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import take_write_lock
from core.errors import Text
from domain.applications import notices, states
from domain.applications.deadlines import on_transition
from domain.applications.errors import ApplicationNotFound, IllegalTransition, InvalidPatch, UnknownStatus
from domain.applications.models import Application, ApplicationEvent
from domain.applications.service import BY_ID, department_codes_of, spec_of, status_params
from domain.applications.timeline import add_event


def advance(
    session: Session,
    *,
    app_id: str,
    to: str,
    actor_type: str,
    actor_id: str | None,
    note: str | None = None,
    fields: list[str] | None = None,
    materials: list[str] | None = None,
    result: str | None = None,
    external_id: str | None = None,
    departments: frozenset[str] | None = None,
) -> tuple[Application, bool]:
    """Apply a handler-side transition; returns (application, applied). A repeat of the same
    external event returns applied=False and changes nothing. `departments`: an operator tied to
    departments moves only cases one of whose items those departments handle; any other case is
    404 to them, as if it did not exist (None: any case)."""
    if to not in states.HANDLER_TARGETS:
        raise UnknownStatus(details={"allowed": sorted(states.HANDLER_TARGETS)})
    if result is not None and to != states.COMPLETED:  # not dropped in silence: a mistaken stage
        raise InvalidPatch(
            fields={"result": [Text("Only a completion has a result", "只有办结时填写办结结果")]}
        )
    take_write_lock(session, Application.__table__, BY_ID, params={"app_id": app_id})
    app = session.scalar(select(Application).where(Application.id == app_id).with_for_update())
    if app is None or (departments is not None and not department_codes_of(session, app) & departments):
        session.rollback()  # ends the lock; nothing written
        raise ApplicationNotFound()
    if external_id is not None:
        seen = session.scalar(
            select(ApplicationEvent.id).where(
                ApplicationEvent.application_id == app.id, ApplicationEvent.external_id == external_id
            )
        )
        if seen is not None:
            session.rollback()
            return app, False
    apply(
        session, app, to, actor_type=actor_type, actor_id=actor_id, note=note, fields=fields,
        materials=materials, result=result, external_id=external_id,
    )  # fmt: skip
    session.commit()
    return app, True


def blank_neighbours(leaves: Any, named: list[str], *, filled: Any) -> list[str]:
    """The blank leaves beside the named fields, which a supplement lets the citizen fill too.

    Changing a named field can make a blank neighbour required (delivery by post needs an
    address). Filling a blank overwrites nothing the department reviewed (every leaf with a
    value has provenance, `filled`). Only a named field's own group counts: a top-level field
    has no group, so naming it opens nothing else."""
    groups = {path.rpartition(".")[0] for path in named} - {""}
    return [
        leaf for leaf in leaves
        if leaf not in named and leaf.rpartition(".")[0] in groups and leaf not in filled
    ]  # fmt: skip


def apply(
    session: Session,
    app: Application,
    to: str,
    *,
    actor_type: str,
    actor_id: str | None,
    note: str | None = None,
    fields: list[str] | None = None,
    materials: list[str] | None = None,
    result: str | None = None,
    external_id: str | None = None,
    at: datetime | None = None,
) -> None:
    """Make the move on a locked application inside the caller's transaction (no commit).
    `at`: when the move happened, if earlier than now (a province event applied late): the
    clock, the timeline and the completion time follow it; `updated_at` is the write's time."""
    if not states.allowed(app.status, to, states.HANDLER, accepted=app.clock_started_on is not None):
        raise IllegalTransition(**status_params(app.status))
    spec = spec_of(session, app)
    details: dict[str, Any] = {}
    if to == states.SUPPLEMENT_REQUESTED:
        problems: dict[str, list[Text]] = {}
        for path in fields or []:
            if path not in spec.leaves:
                problems[f"fields.{path}"] = [Text("Not a field of this form", "表单中没有这一项")]
            elif (app.provenance.get(path) or {}).get("read_only"):
                # Verified from an authoritative source: the citizen could not change it, so
                # the supplement could never be answered. The source's record is what to fix.
                problems[f"fields.{path}"] = [
                    Text("Verified from an authoritative source: the applicant cannot change it",
                         "该项来自权威核验数据，申请人无法修改，请勿列入补正")
                ]  # fmt: skip
        for material_id in materials or []:
            if material_id not in spec.materials:
                problems[f"materials.{material_id}"] = [
                    Text("Not a material of this service", "该事项没有这项材料")
                ]
        opened = list(fields or []), list(materials or [])
        if not (fields or materials):
            if actor_type != "province":  # an operator names them
                problems["fields"] = [
                    Text("Name the fields or materials to supplement", "请列出需要补正的内容")
                ]
            # The province's protocol leaves both optional: asked with a reason alone, the
            # citizen may correct whatever the reason is about (all but verified values).
            opened = (
                [p for p in spec.leaves if not (app.provenance.get(p) or {}).get("read_only")],
                list(spec.materials),
            )
        if problems:
            raise InvalidPatch(fields=problems)
        named = opened[0]
        blanks = blank_neighbours(spec.leaves, named, filled=app.provenance)
        app.supplement = {
            "fields": named, "blank_neighbours": blanks, "materials": opened[1], "reason": note,
        }  # fmt: skip
        if fields or materials:
            # Named: answered once the citizen changes one of them (supplement_answered); a
            # resubmission before that is refused. Asked with a reason alone, what to correct
            # may lie outside the form: not held to it.
            app.supplement["answered"] = False
        details = {"fields": list(fields or []), "materials": list(materials or [])}
    if to == states.COMPLETED:
        if result not in states.RESULTS:
            raise InvalidPatch(fields={"result": [Text("approved or denied", "请填写办结结果（准予/不予）")]})
        app.result = result
        details = {"result": result}
    now = clock.now()
    when = min(at, now) if at is not None else now
    on_transition(session, app, to, when, limits=spec.time_limits, region=spec.region)
    previous = app.status
    app.status = to
    app.revision += 1
    app.updated_at = now
    if to in (states.COMPLETED, states.NOT_ACCEPTED):
        app.completed_at = when
    add_event(
        session, app, previous, to, when, actor_type=actor_type, actor_id=actor_id, note=note,
        details=details or None, external_id=external_id,
    )  # fmt: skip
    notices.emit(session, app, to, note=note, details=details, key=external_id)
    audit.record(
        session, actor_type=actor_type if actor_type in ("operator", "system") else "system",
        actor_id=actor_id, action=f"application.{to}", target_type="application", target_id=app.id,
        details={"from": previous, **details},
    )  # fmt: skip
