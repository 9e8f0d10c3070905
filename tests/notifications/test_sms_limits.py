"""A critical notice whose only channel is SMS, to a number over the provider's hourly or daily
limit: it waits for the window and goes then, instead of being given up after a minute."""

from __future__ import annotations

from typing import Any

import pytest

from tests.notifications.conftest import (
    DAYTIME,
    Sim,
    notify,
    run_notifier,
    states,
)


@pytest.fixture(autouse=True)
def _sim_at_daytime(sms: Sim) -> None:
    """The simulator's windows count from the app's frozen 10:00 Beijing, not the wall clock: run
    at 22:00 Beijing, its daily count would start afresh at midnight in the middle of a test."""
    sms.post("advance", {"to": DAYTIME.timestamp()})


def _advance(daytime: Any, sms: Sim, seconds: float) -> None:
    daytime.advance(seconds)
    sms.post("advance", {"seconds": seconds})


def _five_sent(app: Any, person: dict, sms: Sim, daytime: Any) -> None:
    for i in range(5):  # one every 31 s: the 30-second limit never bites
        note = notify(app, person, "case_completed", result="approved")
        run_notifier(app)
        assert states(app, note.id) == {"sms": "sent"}, i
        _advance(daytime, sms, 31)


def test_a_critical_sms_over_the_hourly_limit_goes_once_the_hour_lifts(
    app: Any, client: Any, person: dict, sms: Sim, daytime: Any
) -> None:
    _five_sent(app, person, sms, daytime)
    sixth = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    first = states(app, sixth.id)
    assert first == {"sms": "temporary_failure"}
    assert first.errors["sms"][0] == "LimitExceeded.PhoneNumberOneHourLimit"
    for _ in range(14):  # 70 minutes: the hour has lifted
        _advance(daytime, sms, 300)
        run_notifier(app)
    assert states(app, sixth.id) == {"sms": "sent"}
    assert len(sms.get("messages")["messages"]) == 6


def test_a_critical_sms_over_the_daily_limit_goes_the_next_morning_not_at_midnight(
    app: Any, client: Any, person: dict, sms: Sim, daytime: Any
) -> None:
    _five_sent(app, person, sms, daytime)  # from 10:00 Beijing
    _advance(daytime, sms, 3700)
    _five_sent(app, person, sms, daytime)  # ten today: the number's daily limit
    _advance(daytime, sms, 3700)  # 12:10
    eleventh = notify(app, person, "case_refused", reason="材料不齐")
    run_notifier(app)
    first = states(app, eleventh.id)
    assert first.errors["sms"][0] == "LimitExceeded.PhoneNumberDailyLimit"
    _advance(daytime, sms, 12 * 3600)  # 00:10 the next day: the limit lifted, the quiet hours began
    run_notifier(app)
    assert states(app, eleventh.id) == {"sms": "temporary_failure"}
    assert len(sms.get("messages")["messages"]) == 10
    _advance(daytime, sms, 7 * 3600)  # 07:10
    run_notifier(app)
    assert states(app, eleventh.id) == {"sms": "sent"}
