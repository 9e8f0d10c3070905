"""A calendar override entered after a case paused: the days the clock stood still are counted on
the calendar as it is now, so a day closed or opened inside a past pause moves nothing, a day
outside it moves the due date as before, and a pause still running is counted when it ends.

The case: an SS card (10 working days promised) accepted Monday 2026-12-07, due 12-21; a
supplement asked Wednesday 12-09 and given Monday 12-14 (3 working days paused): due 12-24."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from core import clock as clock_mod
from core.db import db
from domain.applications import deadline_watch, transitions
from domain.applications.models import ApplicationNotice
from tests.api.v1.applications.conftest import get, key, patch, relogin, submit
from tests.domain.operators.factories import admin_headers, make_operator
from tests.forwarding.conftest import submitted
from tests.outbox_jobs import follow_calendar

MONDAY = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
OVERRIDES = "/admin/v1/calendar/overrides"


@pytest.fixture(autouse=True)
def monday() -> Iterator[clock_mod.FrozenClock]:
    frozen = clock_mod.FrozenClock(MONDAY)
    previous = clock_mod.use(frozen)
    yield frozen
    clock_mod.use(previous)


def _on(clock: clock_mod.FrozenClock, day: date) -> None:
    clock.advance((datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC) - clock.now()).total_seconds())


def _move(case_id: str, to: str, **body: Any) -> None:
    transitions.advance(db.session(), app_id=case_id, to=to, actor_type="province", actor_id=None, **body)


def _accepted(client: Any, who: dict) -> str:
    case = submitted(client, who)["id"]
    _move(case, "received")
    _move(case, "accepted")
    return case


def _supplement(case_id: str) -> None:
    _move(case_id, "supplement_requested", note="请补充开户网点", fields=["ss_card_application.outlet"])


def _resubmit(client: Any, who: dict, case_id: str) -> dict:
    current = get(client, who, case_id).get_json()
    assert patch(client, who, current, {"ss_card_application": {"outlet": "体育西支行"}}).status_code == 200
    done = submit(client, who, get(client, who, case_id).get_json(), consent=False)
    assert done.status_code == 200, done.get_json()
    return done.get_json()


def _paused_and_resumed(app: Any, client: Any, who: dict, clock: clock_mod.FrozenClock) -> tuple[str, dict]:
    case = _accepted(client, who)
    assert _due(client, who, case) == date(2026, 12, 21)
    _on(clock, date(2026, 12, 9))
    _supplement(case)
    _on(clock, date(2026, 12, 14))
    who = relogin(app, who)
    _resubmit(client, who, case)
    assert _due(client, who, case) == date(2026, 12, 24)
    return case, who


def _due(client: Any, who: dict, case_id: str) -> date:
    return date.fromisoformat(get(client, who, case_id).get_json()["expected_completion"])


def _override(app: Any, client: Any, day: str, kind: str) -> str:
    editor = admin_headers(client, make_operator(app, username=f"cal-{day}", roles=("catalog_editor",)))
    body = {
        "date": day,
        "region": "440100",
        "kind": kind,
        "reason": "台风停工" if kind == "holiday" else "调休",
    }
    made = client.post(OVERRIDES, json=body, headers=editor | key())
    assert made.status_code == 201, made.get_json()
    follow_calendar()
    return made.get_json()["id"]


def test_a_day_closed_inside_a_past_pause_leaves_the_due_date(app, client, zhang, monday):
    case, zhang = _paused_and_resumed(app, client, zhang, monday)
    _override(app, client, "2026-12-10", "holiday")  # Thursday, while the supplement was awaited
    assert _due(client, zhang, case) == date(2026, 12, 24)


def test_a_make_up_working_day_inside_a_past_pause_does_not_make_the_case_overdue_early(
    app, client, zhang, monday
):
    case, zhang = _paused_and_resumed(app, client, zhang, monday)
    _override(app, client, "2026-12-12", "workday")  # Saturday, while the supplement was awaited
    assert _due(client, zhang, case) == date(2026, 12, 24)
    _on(monday, date(2026, 12, 24))
    zhang = relogin(app, zhang)
    assert get(client, zhang, case).get_json()["overdue"] is False
    deadline_watch.watch(db.session(), monday.now())
    db.session.commit()
    kinds = db.session.scalars(
        select(ApplicationNotice.event_type).where(ApplicationNotice.application_id == case)
    )
    assert "overdue" not in set(kinds)
    _on(monday, date(2026, 12, 25))
    zhang = relogin(app, zhang)
    assert get(client, zhang, case).get_json()["overdue"] is True


def test_a_day_closed_outside_the_pause_still_moves_the_due_date(app, client, zhang, monday):
    case, zhang = _paused_and_resumed(app, client, zhang, monday)
    closed = _override(app, client, "2026-12-16", "holiday")  # Wednesday, the clock running
    assert _due(client, zhang, case) == date(2026, 12, 25)
    editor = admin_headers(client, make_operator(app, username="cal-remover", roles=("catalog_editor",)))
    assert client.delete(f"{OVERRIDES}/{closed}", headers=editor | key()).status_code == 204
    follow_calendar()
    assert _due(client, zhang, case) == date(2026, 12, 24)


def test_a_day_closed_inside_a_pause_still_running_is_counted_when_it_ends(app, client, zhang, monday):
    case = _accepted(client, zhang)
    _on(monday, date(2026, 12, 9))
    _supplement(case)
    _on(monday, date(2026, 12, 11))
    _override(app, client, "2026-12-10", "holiday")
    zhang = relogin(app, zhang)
    waiting = get(client, zhang, case).get_json()
    # The running pause is not counted yet: the limit alone, on the new calendar.
    assert waiting["clock_paused"] is True and waiting["overdue"] is False
    assert waiting["expected_completion"] == "2026-12-22"
    _on(monday, date(2026, 12, 14))
    zhang = relogin(app, zhang)
    _resubmit(client, zhang, case)
    assert _due(client, zhang, case) == date(2026, 12, 24)  # 12-11 and 12-14 paused


def test_a_day_closed_inside_a_pause_after_the_due_date_moves_it(app, client, zhang, monday):
    """The department asked for a supplement of a case already overdue: the pause lies wholly
    after the due date, and a day the override closes in it is one working day fewer paused."""
    case = _accepted(client, zhang)
    _on(monday, date(2026, 12, 23))
    _supplement(case)
    _on(monday, date(2026, 12, 30))
    zhang = relogin(app, zhang)
    _resubmit(client, zhang, case)
    # (12-23, 12-30]: 24, 25, 28, 29 and 30 paused, 5 working days after 12-21.
    assert _due(client, zhang, case) == date(2026, 12, 28)
    _override(app, client, "2026-12-29", "holiday")
    assert _due(client, zhang, case) == date(2026, 12, 25)


def test_an_override_entered_while_a_case_is_being_accepted_still_reaches_its_due_date(
    app, client, zhang, monday, monkeypatch
):
    """The acceptance has computed the due date on the calendar as it was and not committed yet
    when an operator enters a typhoon closure, and a worker runs the closure's job just after
    its 201. Without the calendar's lock the closure commits at once and its job does not see
    the case (not accepted in its snapshot): the case keeps 12-21. Counting holds the calendar
    (`deadlines.on_transition`), so the closure waits for the acceptance and its job counts the
    closed Thursday (PostgreSQL)."""
    from domain.applications import deadlines
    from tests.concurrency import Competing

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the closure waits for the acceptance anyway")
    case = submitted(client, zhang)["id"]
    _move(case, "received")
    editor = admin_headers(client, make_operator(app, username="cal-race", roles=("catalog_editor",)))
    body = {"date": "2026-12-10", "region": "440100", "kind": "holiday", "reason": "台风停工"}
    real, entered = deadlines.compute_due, []

    def entered_and_followed(c: Any) -> tuple[int, list[str]]:  # as the operator, then a worker
        answer = c.post(OVERRIDES, json=body, headers=editor | key())
        with app.app_context():
            return answer.status_code, follow_calendar()

    def override_meanwhile(*args: Any, **kw: Any) -> Any:
        due = real(*args, **kw)
        if not entered:  # the acceptance has its date and has not committed yet
            entered.append(Competing(app, entered_and_followed))
        return due

    monkeypatch.setattr(deadlines, "compute_due", override_meanwhile)
    _move(case, "accepted")
    monkeypatch.undo()
    assert entered and entered[0].result() == (201, ["succeeded"])
    assert _due(client, zhang, case) == date(2026, 12, 22)  # 12-21 on the calendar before
