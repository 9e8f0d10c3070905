"""Due-soon and overdue notices reach the citizen once per due date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from core.db import db
from domain.applications import deadline_watch
from domain.applications.deadlines import local_date
from domain.applications.models import Application, ApplicationNotice
from tests.api.v1.applications.conftest import seeded, zhang  # noqa: F401 - fixtures
from tests.forwarding.conftest import submitted
from tests.notifications.conftest import run_notifier


def _accepted_due_in(client: Any, who: dict, clock: Any, days: int) -> str:
    case = submitted(client, who)
    session = db.session()
    app = session.get(Application, case["id"])
    app.status = "accepted"
    app.due_on = local_date(clock.now()) + timedelta(days=days)
    session.commit()
    return case["id"]


def _kinds(app_id: str) -> list[str]:
    db.session.remove()
    rows = db.session.scalars(select(ApplicationNotice).where(ApplicationNotice.application_id == app_id))
    return sorted(n.event_type for n in rows if n.event_type in ("due_soon", "overdue"))


def test_due_soon_then_overdue_once_each(app: Any, client: Any, zhang: dict, daytime: Any) -> None:  # noqa: F811
    app_id = _accepted_due_in(client, zhang, daytime, 2)
    assert deadline_watch.watch(db.session(), daytime.now()) == 1
    assert deadline_watch.watch(db.session(), daytime.now()) == 0  # once per due date
    db.session.commit()
    assert _kinds(app_id) == ["due_soon"]
    daytime.advance(days=3)
    assert deadline_watch.watch(db.session(), daytime.now()) == 1
    db.session.commit()
    assert _kinds(app_id) == ["due_soon", "overdue"]
    run_notifier(app)
    db.session.remove()
    from notifications.models import Notification

    titles = sorted(n.title for n in db.session.scalars(select(Notification)) if n.application_id == app_id)
    assert "办件即将到期" in titles and "办件已超期" in titles


def test_paused_and_far_cases_are_left_alone(app: Any, client: Any, zhang: dict, daytime: Any) -> None:  # noqa: F811
    far = _accepted_due_in(client, zhang, daytime, 10)
    paused = _accepted_due_in(client, zhang, daytime, 1)
    session = db.session()
    session.get(Application, paused).paused_on = local_date(daytime.now())
    session.commit()
    assert deadline_watch.watch(db.session(), daytime.now()) == 0
    assert _kinds(far) == [] and _kinds(paused) == []


def test_every_overdue_case_is_told_however_many_there_are(
    app: Any,
    client: Any,
    zhang: dict,  # noqa: F811
    daytime: Any,
) -> None:
    """Read a batch at a time: overdue cases stay in the set until they end, so a run that read
    only its first batch would find nothing new there and never reach the cases beyond it."""
    cases = [_accepted_due_in(client, zhang, daytime, -1) for _ in range(5)]
    assert deadline_watch.watch(db.session(), daytime.now(), limit=2) == 5
    assert deadline_watch.watch(db.session(), daytime.now(), limit=2) == 0
    db.session.commit()
    assert [_kinds(c) for c in cases] == [["overdue"]] * 5
