"""Fixtures for notifications: a daytime clock, citizens with channels, and a notifier run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from core import clock as clock_mod
from tests.conftest import make_citizen

# 10:00 in Beijing: outside quiet hours whatever the wall clock says when CI runs.
DAYTIME = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
NIGHT = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 23:00 in Beijing


@pytest.fixture(autouse=True)
def daytime() -> Iterator[clock_mod.FrozenClock]:
    frozen = clock_mod.FrozenClock(DAYTIME)
    previous = clock_mod.use(frozen)
    yield frozen
    clock_mod.use(previous)


class Sim:
    """A simulator's control API over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=10)

    def post(self, path: str, body: dict | None = None) -> Any:
        resp = self.http.post(f"{self.url}/_sim/{path}", json=body or {})
        assert resp.status_code < 300, (path, resp.status_code, resp.text)
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(f"{self.url}/_sim/{path}", params=params).json()


@pytest.fixture
def apns(apns_sim: Any) -> Iterator[Sim]:
    """The session's APNs simulator, reset before and after (a fault left queued would fail the
    next test that pushes without this fixture)."""
    sim = Sim(apns_sim.url)
    sim.post("reset")
    yield sim
    sim.post("reset")


@pytest.fixture
def wechat(wechat_sim: Any) -> Sim:
    return Sim(wechat_sim.url)


@pytest.fixture
def sms(sms_sim: Any) -> Sim:
    sim = Sim(sms_sim.url)
    sim.post("reset")
    return sim


def add_wechat(app: Any, wechat: Sim, account_id: str) -> str:
    """Give an account a mini-program identity known to the WeChat simulator; its openid."""
    from core.db import db
    from domain.accounts.models import ChannelIdentity
    from domain.accounts.service import WECHAT_OPENID

    openid = "o" + uuid.uuid4().hex[:27]
    wechat.post("users", {"openid": openid})
    session = db.session()
    session.add(
        ChannelIdentity(
            account_id=account_id,
            kind=WECHAT_OPENID,
            issuer=app.config["WECHAT_APPID"],
            lookup=openid,
            created_at=clock_mod.now(),
        )  # fmt: skip
    )
    session.commit()
    return openid


@pytest.fixture
def person(app: Any) -> dict:
    """A citizen with a phone (SMS) on the app channel."""
    return make_citizen(app, phone=f"139{uuid.uuid4().int % 10**8:08d}")


def apns_token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def register_device(client: Any, who: dict, token: str | None = None) -> dict:
    resp = client.post(
        "/v1/devices",
        json={"provider": "apns", "token": token or apns_token(), "platform": "ios"},
        headers=who["headers"],
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def notify(
    app: Any, who: dict, event_type: str = "case_accepted", key: str | None = None, **params: Any
) -> Any:
    """Report an event for the citizen (as a case change would) and commit; a parameter given as
    None is left out (an appointment reminder has no case number)."""
    from core.db import db
    from notifications import fanout

    settings = app.extensions["yiwang"].notifications.settings
    base = {"service_name": "城乡居民基本养老保险参保登记", "case_number": "YW202612040001"}
    session = db.session()
    note = fanout.notify(
        session, settings, account_id=who["account_id"], event_type=event_type,
        params={k: v for k, v in (base | params).items() if v is not None},
        dedupe_key=key or uuid.uuid4().hex,
    )  # fmt: skip
    session.commit()
    if note is not None:  # loaded and detached: usable after the notifier closes this session
        session.refresh(note)
        session.expunge(note)
    return note


def run_notifier(app: Any) -> dict:
    """Plan and send everything due now, as the notifier process does."""
    from workers.notifier import run

    return run(app, threads=2, once=True)


class States(dict):
    """channel → state; its repr adds each failed message's error code and text, so a test that
    finds an unexpected failure says which (e.g. a provider timeout, or an exception of ours)."""

    def __init__(self, rows: list[dict]) -> None:
        super().__init__({m["channel"]: m["state"] for m in rows})
        self.errors = {m["channel"]: (m["error_code"], m["error"]) for m in rows if m["error_code"]}

    def __repr__(self) -> str:
        return super().__repr__() + (f" errors={self.errors!r}" if self.errors else "")


def states(app: Any, note_id: str) -> States:
    from core.db import db
    from notifications.delivery import message_states

    db.session.remove()
    return States(message_states(db.session(), note_id))


def tune(app: Any, monkeypatch: Any, **changes: Any) -> None:
    """Change notification settings for one test."""
    import dataclasses

    deps = app.extensions["yiwang"].notifications
    monkeypatch.setattr(deps, "settings", dataclasses.replace(deps.settings, **changes))


@pytest.fixture(scope="session")
def yiwang_http(app: Any) -> Iterator[Any]:
    """yiwang on a real port, so simulators' reports arrive over HTTP."""
    from integrations.simulator_server import ThreadedSimulator

    server = ThreadedSimulator(app).start()
    yield server
    server.stop()


@pytest.fixture
def sms_reports(app: Any, sms_sim: Any, yiwang_http: Any, sms: Sim) -> Sim:
    """The SMS simulator sending its delivery reports to yiwang (mode set by the test)."""
    state = sms_sim.app.extensions["sms_sim"]
    state.receipt_url = f"{yiwang_http.url}v1/platform/sms-receipts/{app.config['SMS_RECEIPT_TOKEN']}"
    return sms
