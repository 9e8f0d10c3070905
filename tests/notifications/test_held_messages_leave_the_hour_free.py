"""Messages held for the quiet hours count in the hour they go out, and only there: at night
they do not use up the current hour's per-user limit for a message that goes out now."""

from __future__ import annotations

from typing import Any

from tests.api.v1.applications.conftest import relogin
from tests.notifications.conftest import Sim, notify, run_notifier, states, tune
from tests.notifications.test_planning import at_night


def test_an_exempt_reminder_at_night_is_not_limited_by_messages_waiting_for_seven(
    app: Any, client: Any, apns: Sim, daytime: Any, monkeypatch: Any
) -> None:
    person = at_night(app, client, daytime)  # 23:00
    tune(app, monkeypatch, user_per_hour=2, quiet_exempt=frozenset({"appointment_reminder"}))
    held = [notify(app, person, "case_received") for _ in range(2)]  # held to 07:00
    assert all("push" not in n.skipped for n in held)
    daytime.advance(hours=3)  # 02:00: nothing went out in the last hour
    reminder = notify(app, person, "appointment_reminder", time="08:30", hall="市民中心")
    assert "push" not in reminder.skipped, reminder.skipped
    run_notifier(app)
    assert states(app, reminder.id) == {"apns": "delivered"}


def test_an_exempt_reminder_in_the_same_batch_as_held_messages_is_not_limited_by_them(
    app: Any, client: Any, apns: Sim, daytime: Any, monkeypatch: Any
) -> None:
    from core.db import db
    from notifications import fanout

    person = at_night(app, client, daytime)  # 23:00
    tune(app, monkeypatch, user_per_hour=2, quiet_exempt=frozenset({"appointment_reminder"}))
    settings = app.extensions["yiwang"].notifications.settings
    base = {"service_name": "城乡居民基本养老保险参保登记", "case_number": "YW202612040001"}
    reminder = {"time": "08:30", "hall": "市民中心"}
    events = [fanout.Event(person["account_id"], "case_received", base, f"batch:{i}") for i in range(2)]
    events.append(fanout.Event(person["account_id"], "appointment_reminder", reminder, "batch:r"))
    session = db.session()
    made = fanout.plan(session, settings, events)
    session.commit()
    assert [("push" in n.skipped) for n in made] == [False, False, False], [n.skipped for n in made]
    ids = [n.id for n in made]
    run_notifier(app)
    assert states(app, ids[2]) == {"apns": "delivered"}
    assert states(app, ids[0]) == {"apns": "created"}  # still held for 07:00


def test_a_citizen_who_turns_quiet_hours_off_at_night_is_told_at_once(
    app: Any, client: Any, apns: Sim, daytime: Any, monkeypatch: Any
) -> None:
    person = at_night(app, client, daytime)  # 23:00
    tune(app, monkeypatch, user_per_hour=2)
    [notify(app, person, "case_received") for _ in range(2)]  # held to 07:00
    daytime.advance(hours=3)  # 02:00
    person = relogin(app, person)
    r = client.put("/v1/me/notification-preferences", json={"quiet_hours": False}, headers=person["headers"])
    assert r.status_code == 200, r.get_json()
    note = notify(app, person, "case_accepted")
    assert "push" not in note.skipped, note.skipped
    run_notifier(app)
    assert states(app, note.id) == {"apns": "delivered"}
