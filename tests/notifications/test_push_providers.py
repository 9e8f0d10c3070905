"""JPush and Huawei Push Kit end to end against their simulators."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.db import db
from notifications.models import Device
from tests.notifications.conftest import Sim, notify, run_notifier, states


@pytest.fixture
def jpush(jpush_sim: Any) -> Sim:
    sim = Sim(jpush_sim.url)
    sim.post("reset")
    return sim


@pytest.fixture
def huawei(huawei_sim: Any) -> Sim:
    sim = Sim(huawei_sim.url)
    sim.post("reset")
    return sim


def _device(client: Any, who: dict, provider: str, token: str, platform: str) -> dict:
    resp = client.post("/v1/devices", json={"provider": provider, "token": token, "platform": platform},
                       headers=who["headers"])  # fmt: skip
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_jpush_delivers_and_a_vanished_registration_id_disables_the_device(
    app: Any, client: Any, person: dict, jpush: Sim
) -> None:
    rid = "1a0018970a" + uuid.uuid4().hex[:9]
    device = _device(client, person, "jpush", rid, "android")
    note = notify(app, person, "case_completed", result="approved")
    run_notifier(app)
    assert states(app, note.id)["jpush"] == "delivered"
    pushed = jpush.get("pushes")
    assert pushed[0]["registration_ids"] == [rid]
    assert pushed[0]["notification"]["android"]["title"] == "办件已办结"
    assert pushed[0]["notification"]["android"]["extras"]["notification_id"] == note.id
    jpush.http.delete(f"{jpush.url}/_sim/devices/{rid}")  # the app was uninstalled
    later = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, later.id) == {"jpush": "permanent_failure"}
    db.session.remove()
    assert db.session.get(Device, device["id"]).disabled_reason == "unregistered"


def test_jpush_rate_limit_is_retried(app: Any, client: Any, person: dict, jpush: Sim, daytime: Any) -> None:
    _device(client, person, "jpush", "1a0018970a" + uuid.uuid4().hex[:9], "android")
    jpush.post("faults", {"status": 429, "code": 2002, "times": 1})
    note = notify(app, person)
    run_notifier(app)
    assert states(app, note.id) == {"jpush": "temporary_failure"}
    daytime.advance(60)
    run_notifier(app)
    assert states(app, note.id) == {"jpush": "delivered"}


def test_huawei_push_renews_an_expired_oauth_token_and_drops_uninstalled_tokens(
    app: Any, client: Any, person: dict, huawei: Sim
) -> None:
    token = "AMhw" + uuid.uuid4().hex + uuid.uuid4().hex
    _device(client, person, "huawei", token, "android")
    first = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, first.id) == {"huawei": "delivered"}
    huawei.post("expire")  # Push Kit answers 80200003 until a new token is fetched
    second = notify(app, person, "case_received")
    run_notifier(app)
    assert states(app, second.id) == {"huawei": "delivered"}
    sent = huawei.get("messages")
    assert [m["notification"]["title"] for m in sent["messages"]] == ["申请已受理", "申请已送达办理部门"]
    assert sent["token_calls"] >= 2
    huawei.http.delete(f"{huawei.url}/_sim/tokens/{token}")
    third = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, third.id) == {"huawei": "permanent_failure"}


def test_one_event_fans_out_to_every_device(
    app: Any, client: Any, person: dict, jpush: Sim, huawei: Sim
) -> None:
    from tests.notifications.conftest import register_device

    register_device(client, person)
    _device(client, person, "jpush", "1a0018970a" + uuid.uuid4().hex[:9], "android")
    _device(client, person, "huawei", "AMhw" + uuid.uuid4().hex + uuid.uuid4().hex, "harmony")
    note = notify(app, person, "case_accepted")
    run_notifier(app)
    assert states(app, note.id) == {"apns": "delivered", "jpush": "delivered", "huawei": "delivered"}
