"""Due dates follow the calendar: an override added or removed moves the cases it falls within.

A due date is computed when the clock starts, pauses or resumes, on the calendar as it is then.
Operators enter the State Council's arrangement for a year the holiday library does not know yet
(and local closures, a typhoon day) when it is published, often after cases counting through that
year were accepted: without this, those cases kept a due date counted on the guess (weekends and
1 January only) and showed overdue during the Spring Festival.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import profile_cache
from domain.applications import states
from domain.applications.deadlines import compute_due
from domain.applications.models import Application
from domain.applications.service import spec_of
from domain.appointments import closures
from domain.calendar import service as calendar
from domain.calendar.models import CalendarOverride
from domain.operators.audit_log import Actor

BATCH = 500


def add_override(
    session: Session, *, actor: Actor, region: str, day: date, kind: str, reason: str
) -> CalendarOverride:
    """`calendar.add_override`, then the open cases counting through that day, and the halls'
    slots of that day (domain/appointments/closures.py), follow it."""
    override = calendar.add_override(session, actor=actor, region=region, day=day, kind=kind, reason=reason)
    follow(session, day=override.day, region=override.region)
    closures.follow(session, day=override.day, region=override.region)
    return override


def delete_override(session: Session, *, actor: Actor, override_id: str) -> None:
    """`calendar.delete_override`, then the open cases and the slots of that day follow it."""
    day, region = calendar.delete_override(session, actor=actor, override_id=override_id)
    follow(session, day=day, region=region)
    closures.follow(session, day=day, region=region)


def follow(session: Session, *, day: date, region: str) -> int:
    """Recompute the due dates of open cases whose running time limit spans `day` in a region
    under `region` (000000: every region); commits each batch. How many moved."""
    moved = 0
    after = ""
    while True:
        apps = list(
            session.scalars(
                select(Application)
                .where(
                    Application.clock_started_on.is_not(None),
                    Application.clock_started_on <= day,
                    Application.due_on >= day,
                    Application.status.not_in(states.FINAL),
                    Application.id > after,
                )
                .order_by(Application.id)
                .limit(BATCH)
                .with_for_update()
            )
        )
        for app in apps:
            spec = spec_of(session, app)
            if region not in calendar.region_chain(spec.region):
                continue
            due = compute_due(
                session, app.clock_started_on, spec.time_limits, paused=app.paused_working_days,  # type: ignore[arg-type]
                region=spec.region, paused_days=app.paused_days or 0,
            )  # fmt: skip
            if due != app.due_on:
                app.due_on = due
                profile_cache.mark_changed(session, app.account_id)
                profile_cache.mark_application_changed(session, app.id)
                moved += 1
        session.commit()
        if len(apps) < BATCH:
            return moved
        after = apps[-1].id
