"""Fixtures for the real-name flows: every provider simulator reset, citizens on both channels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from integrations.realname.people import DEMO_PEOPLE
from integrations.wechat.sim_control import WechatSimControl
from tests.conftest import make_citizen

ZHANG = {"name": DEMO_PEOPLE[0][0], "id_number": DEMO_PEOPLE[0][1]}
LI = {"name": DEMO_PEOPLE[1][0], "id_number": DEMO_PEOPLE[1][1]}
CONSENT = {"accepted": True, "text_version": "face-2026-12"}
URL = "/v1/identity/verifications"


class Sim:
    """The control API of one simulator (/_sim/...)."""

    def __init__(self, sim: Any) -> None:
        self.url = sim.url

    def post(self, path: str, body: dict | None = None) -> Any:
        resp = requests.post(self.url + "_sim/" + path, json=body or {}, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def get(self, path: str) -> Any:
        resp = requests.get(self.url + "_sim/" + path, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def perform(self, ref: str, outcome: str = "pass") -> None:
        self.post("face/perform", {"ref": ref, "outcome": outcome})

    def calls(self) -> int:
        body = self.get("calls")
        return int(body.get("total", sum(v for v in body.values() if isinstance(v, int))))


@pytest.fixture
def sims(wechat_sim, faceid_sim, alipay_sim, idcheck_sim) -> Iterator[dict[str, Sim]]:
    """Every real-name simulator, reset; keyed by method. Reset again afterwards: they serve the
    whole session, and a fault a test left on (a provider down) would fail the next test."""

    def reset() -> None:
        WechatSimControl(wechat_sim.url).reset()
        for name in ("tencent_faceid", "alipay_face", "id_check"):
            out[name].post("reset")

    out = {
        "wechat_face": Sim(wechat_sim),
        "tencent_faceid": Sim(faceid_sim),
        "alipay_face": Sim(alipay_sim),
        "id_check": Sim(idcheck_sim),
    }
    reset()
    yield out
    reset()


@pytest.fixture
def wx(wechat_sim) -> WechatSimControl:
    return WechatSimControl(wechat_sim.url)


def mini_citizen(client: Any, wx: WechatSimControl, **user: Any) -> dict:
    """A citizen logged in through the mini-program (a WeChat-only account)."""
    created = wx.add_user(**user)
    body = client.post(
        "/v1/auth/miniprogram/login", json={"code": wx.login_code(created["openid"])}
    ).get_json()
    return {
        "account_id": body["account_id"],
        "session_id": body["session_id"],
        "access_token": body["access_token"],
        "refresh_token": body["refresh_token"],
        "openid": created["openid"],
        "headers": {"Authorization": f"Bearer {body['access_token']}"},
    }


@pytest.fixture
def app_citizen(app) -> dict:
    return make_citizen(app)


def ref_of(body: dict) -> str:
    """The provider handle inside the client payload of a started verification."""
    client = body["verification"]["client"]
    for key in ("verify_id", "biz_token", "certify_id"):
        if client.get(key):
            return client[key]
    raise AssertionError(f"no provider handle in {client}")


def start(
    client: Any, who: dict, method: str, person: dict | None = None, consent: Any = CONSENT, **hdr: str
):
    body: dict[str, Any] = {"method": method, **(person or ZHANG)}
    if consent is not None:
        body["consent"] = consent
    return client.post(URL, json=body, headers=who["headers"] | hdr)


def complete(client: Any, who: dict, verification_id: str, **hdr: str):
    return client.post(f"{URL}/{verification_id}/complete", headers=who["headers"] | hdr)


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def refreshed(client: Any, who: dict) -> dict:
    """`who` with new tokens (after the test clock moved past the access token's life)."""
    resp = client.post("/v1/auth/refresh", json={"refresh_token": who["refresh_token"]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    return who | {"access_token": body["access_token"], "refresh_token": body["refresh_token"],
                  "headers": bearer(body)}  # fmt: skip
