"""A case moved by the province's callbacks reaches the citizen: inbox, push, SMS fallback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core import clock as clock_mod
from tests.forwarding.conftest import forward, fresh, submitted, wait_for
from tests.notifications.conftest import DAYTIME, Sim, register_device, run_notifier

INSURANCE_NAME = "参保登记信息"  # the SS card item's material "insurance"


@pytest.fixture(autouse=True)
def daytime() -> Any:
    frozen = clock_mod.FrozenClock(DAYTIME)
    previous = clock_mod.use(frozen)
    yield frozen
    clock_mod.use(previous)


@pytest.fixture
def apns(apns_sim: Any) -> Iterator[Sim]:
    """The session's APNs simulator, reset before and after (a fault left queued would fail the
    next test that pushes without this fixture)."""
    sim = Sim(apns_sim.url)
    sim.post("reset")
    yield sim
    sim.post("reset")


def _inbox(client: Any, who: dict) -> list[dict]:
    fresh()
    return client.get("/v1/notifications", headers=who["headers"]).get_json()["items"]


def _applied(app: Any) -> None:
    from domain.forwarding import events

    events.apply_pending(fresh(), app.extensions["yiwang"].forwarding.profile())


def test_each_stage_of_a_case_reaches_the_inbox_and_the_phone_once(
    app: Any, client: Any, zhang: dict, services: Any, province: Any, apns: Sim, daytime: Any
) -> None:
    register_device(client, zhang)
    case = submitted(client, zhang)
    forward(services)  # received by the province → 省平台已接收
    daytime.advance(1)  # the province asks for more a moment later
    sblsh = case["case_number"]
    province.post("faults", {"duplicate_callbacks": 1.0})  # every callback arrives twice
    province.post(f"cases/{sblsh}/supplement", {"materials": ["insurance"], "reason": "签名不清晰"})
    wait_for(lambda: _applied(app) or _inbox_ready(app))
    run_notifier(app)
    items = _inbox(client, zhang)
    kinds = [i["event_type"] for i in items]
    assert kinds == ["supplement_requested", "case_received"]
    supplement = items[0]
    assert "insurance" not in supplement["body"]  # the material by its name, not its id
    assert INSURANCE_NAME in supplement["body"] and "签名不清晰" in supplement["body"]
    english = client.get("/v1/notifications", headers=zhang["headers"] | {"Accept-Language": "en"})
    assert "Social insurance registration record" in english.get_json()["items"][0]["body"]
    assert supplement["application_id"] == case["id"]
    pushed = apns.get("notifications")
    assert sorted(p["payload"]["aps"]["alert"]["title"] for p in pushed) == [
        "申请已送达办理部门",
        "请补正申请",
    ]
    # The province repeats its callbacks: nothing is told twice.
    run_notifier(app)
    assert len(_inbox(client, zhang)) == 2 and len(apns.get("notifications")) == 2


def _inbox_ready(app: Any) -> bool:
    from sqlalchemy import func, select

    from domain.applications.models import ApplicationNotice

    return (fresh().scalar(select(func.count(ApplicationNotice.id))) or 0) >= 2
