"""Fixtures for forwarding: the province simulator wired to yiwang over real HTTP, both ways."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from integrations.simulator_server import ThreadedSimulator
from tests.api.v1.applications.conftest import (  # noqa: F401 - fixtures used by the tests here
    SS_CARD,
    create,
    get,
    jpeg,
    key,
    li,
    officer,
    patch,
    seeded,
    submit,
    upload,
    zhang,
)


@pytest.fixture(scope="session")
def yiwang_http(app: Any) -> Iterator[ThreadedSimulator]:
    """yiwang itself on a real port, so the simulator's callbacks arrive over HTTP."""
    server = ThreadedSimulator(app).start()
    yield server
    server.stop()


class Province:
    """The simulator's control API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=10)

    def post(self, path: str, body: dict | None = None) -> Any:
        resp = self.http.post(f"{self.url}/_sim/{path}", json=body or {})
        assert resp.status_code < 300, (path, resp.status_code, resp.text)
        return resp.json()

    def stats(self) -> dict:
        return self.http.get(f"{self.url}/_sim/stats").json()

    def case(self, sblsh: str) -> dict:
        return self.http.get(f"{self.url}/_sim/cases/{sblsh}").json()

    def faults(self, **faults: Any) -> dict:
        return self.post("faults", faults)


@pytest.fixture
def province(app: Any, province_sim: ThreadedSimulator, yiwang_http: ThreadedSimulator) -> Iterator[Province]:
    sim = Province(province_sim.url)
    sim.post("reset")
    sim.post("callback_url", {"url": f"{yiwang_http.url}v1/platform/callbacks"})
    yield sim
    sim.post("reset")


def fresh() -> Any:
    """A new session of this thread (others may have written meanwhile; SQLite needs the
    test's read transaction closed before a server thread can write)."""
    from core.db import db

    db.session.remove()
    return db.session()


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
        fresh()


def apply_events(app: Any) -> int:
    """What the forwarders' applier does: move cases by the stage events callbacks kept."""
    from domain.forwarding import events

    return events.apply_pending(fresh(), app.extensions["yiwang"].forwarding.profile())


def ready(client: Any, who: dict) -> dict:
    """An SS card draft with everything a submission needs."""
    app = create(client, who, service_code=SS_CARD).get_json()
    app = patch(
        client, who, app, {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    ).get_json()
    for material in ("id_card", "insurance"):
        assert upload(client, who, app["id"], material, jpeg()).status_code == 201
    return get(client, who, app["id"]).get_json()


def submitted(client: Any, who: dict) -> dict:
    app = ready(client, who)
    resp = submit(client, who, app)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def forward(services: Any, *, forwarder: Any = None, rounds: int = 1) -> list[str]:
    """Claim and deliver whatever is due, `rounds` times; the outcomes."""
    fw = forwarder or services.forwarding.forwarder()
    outcomes = []
    for _ in range(rounds):
        for row_id, attempt in fw.claim(fresh(), 50):
            outcomes.append(fw.deliver(fresh(), row_id, attempt))
    fresh()
    return outcomes


def province_credentials(app: Any) -> Any:
    """What the province signs callbacks with."""
    from integrations.province import signing

    cfg = app.config
    profile = app.extensions["yiwang"].forwarding.profile()
    return signing.Credentials(
        alg=profile.credentials.alg, app_id=cfg["PROVINCE_APP_ID"], secret=cfg["PROVINCE_SECRET"],
        own_private_key=cfg["PROVINCE_SIM_SM2_PRIVATE_KEY"],
        own_public_key=cfg["PROVINCE_PEER_SM2_PUBLIC_KEY"],
        peer_public_key=cfg["PROVINCE_SM2_PUBLIC_KEY"], user_id=cfg["PROVINCE_SM2_USER_ID"],
    )  # fmt: skip


def callback(client: Any, app: Any, event: dict, *, path: str = "/v1/platform/callbacks", **sign: Any) -> Any:
    """POST a signed stage event as the province would."""
    from integrations.province import signing

    body = json.dumps(event, ensure_ascii=False).encode()
    headers = signing.sign_request(province_credentials(app), "POST", path, body, **sign)
    return client.post(path, data=body, headers=headers | {"Content-Type": "application/json"})


def event(sblsh: str, seq: int, stage: str, **extra: Any) -> dict:
    return {"event_id": f"EV{uuid.uuid4().hex[:16]}", "sblsh": sblsh, "seq": seq, "stage": stage, **extra}


def ops_headers(app: Any, client: Any) -> dict:
    """A freshly logged-in operator with role ops (after the test clock moved on, too)."""
    from tests.domain.operators.factories import admin_headers, make_operator

    name = f"ops-{uuid.uuid4().hex[:8]}"
    return admin_headers(client, make_operator(app, username=name, roles=("ops",)))


@pytest.fixture
def ops(app: Any, client: Any) -> dict:
    return ops_headers(app, client)
