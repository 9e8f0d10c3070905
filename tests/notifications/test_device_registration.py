"""Registering push tokens and reporting subscribe-message choices: strict token rules, and
requests that arrive together (an app's launch and its token refresh, two subscribe prompts)
neither fail nor lose anything."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from core.db import db
from notifications.models import WechatSubscription
from tests.notifications.conftest import Sim, add_wechat, apns_token, register_device

TEMPLATE = "tpl_application_progress"


def _at_once(app: Any, request: Callable[[Any], Any], n: int = 4) -> list[int]:
    """Run `request(test_client)` in n threads released together; their status codes."""
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def go() -> None:
        c = app.test_client()
        barrier.wait()
        try:
            codes.append(request(c).status_code)
        finally:
            db.remove()

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return codes


def test_a_token_with_a_trailing_newline_is_refused(client: Any, person: dict) -> None:
    token = apns_token()
    register_device(client, person, token)
    resp = client.post(
        "/v1/devices",
        json={"provider": "apns", "token": token + "\n", "platform": "ios"},
        headers=person["headers"],
    )
    assert resp.status_code == 422
    assert len(client.get("/v1/devices", headers=person["headers"]).get_json()) == 1


def test_the_same_new_token_registered_at_once_makes_one_device(app: Any, client: Any, person: dict) -> None:
    for _ in range(5):
        body = {"provider": "apns", "token": apns_token(), "platform": "ios"}
        codes = _at_once(
            app, lambda c, body=body: c.post("/v1/devices", json=body, headers=person["headers"])
        )
        assert codes == [201] * 4, codes
    assert len(client.get("/v1/devices", headers=person["headers"]).get_json()) == 5


def _remaining(account_id: str) -> int | None:
    db.session.remove()
    row = db.session.get(WechatSubscription, (account_id, TEMPLATE))
    return None if row is None else row.remaining


def _accept(headers: dict) -> Callable[[Any], Any]:
    return lambda c: c.post(
        "/v1/miniprogram/subscriptions", json={"results": {TEMPLATE: "accept"}}, headers=headers
    )


def test_first_subscription_reports_at_once_all_count(app: Any, person: dict, wechat: Sim) -> None:
    add_wechat(app, wechat, person["account_id"])
    codes = _at_once(app, _accept(person["headers"]))
    assert codes == [200] * 4, codes
    assert _remaining(person["account_id"]) == 4


def test_later_subscription_reports_at_once_all_count(
    app: Any, client: Any, person: dict, wechat: Sim
) -> None:
    add_wechat(app, wechat, person["account_id"])
    assert _accept(person["headers"])(client).status_code == 200
    codes = _at_once(app, _accept(person["headers"]))
    assert codes == [200] * 4, codes
    assert _remaining(person["account_id"]) == 5
