"""The exchange and e-certificate simulators on random ports, built from a small config (no database).

Both simulators derive their data from the same seeded population as the `population` and
`registry` fixtures here, so a test picks its people and certificates from those, independently
of the simulator's own state. The `exchange` client resets its simulator first; tests that change
the library's states or read its counts ask for `ecert_ctl`, which resets it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask, Response

from integrations.govdata import protocol
from integrations.govdata.certificates import CertificateRegistry
from integrations.govdata.client import EcertClient, ExchangeClient
from integrations.govdata.population import Population
from integrations.simulator_server import ThreadedSimulator

SIM_CONFIG: dict[str, Any] = {"EXCHANGE_SIM_APPROVAL_SECONDS": 0}  # tickets wait for the control API
CLIENT_TIMEOUT = 3.0


class SimControl:
    """The unsigned control API (/_sim/) of a simulator."""

    def __init__(self, url: str) -> None:
        self.url = url

    def reset(self) -> None:
        requests.post(f"{self.url}_sim/reset", timeout=5).raise_for_status()

    def get(self, path: str) -> Any:
        resp = requests.get(f"{self.url}_sim/{path}", timeout=5)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.url}_sim/{path}", json=body, timeout=5)

    def stats(self) -> dict[str, Any]:
        return self.get("stats")


def serve(app: Any) -> ThreadedSimulator:
    return ThreadedSimulator(app).start()


@pytest.fixture(scope="session")
def population() -> Population:
    return Population()


@pytest.fixture(scope="session")
def registry(population: Population) -> CertificateRegistry:
    return CertificateRegistry(population)


@pytest.fixture(scope="session")
def exchange_server() -> Iterator[ThreadedSimulator]:
    from integrations.govdata.exchange_sim import create_simulator

    sim = serve(create_simulator(SIM_CONFIG))
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def ecert_server() -> Iterator[ThreadedSimulator]:
    from integrations.govdata.ecert_sim import create_simulator

    sim = serve(create_simulator(SIM_CONFIG))
    yield sim
    sim.stop()


@pytest.fixture
def exchange_ctl(exchange_server: ThreadedSimulator) -> SimControl:
    ctl = SimControl(exchange_server.url)
    ctl.reset()
    return ctl


@pytest.fixture
def ecert_ctl(ecert_server: ThreadedSimulator) -> Iterator[SimControl]:
    """Resets the library before and after: a test that asks for it may change states and counts.

    (A reset rebuilds every certificate, so tests that only read do not ask for it.)
    """
    ctl = SimControl(ecert_server.url)
    ctl.reset()
    yield ctl
    ctl.reset()


@pytest.fixture
def exchange(exchange_server: ThreadedSimulator, exchange_ctl: SimControl) -> ExchangeClient:
    return ExchangeClient(exchange_server.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)


@pytest.fixture
def ecert(ecert_server: ThreadedSimulator) -> EcertClient:
    return EcertClient(ecert_server.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)


class ScriptedServer:
    """A server that checks request signatures like the real systems and answers as a test says.

    `reply(path, body) -> Response`; `signed(...)` signs with the right secret, `signed_by(...)`
    with another one.
    """

    def __init__(self) -> None:
        self.endpoint = protocol.SignedEndpoint(protocol.credentials({}))
        self.reply: Callable[[str, dict[str, Any]], Response] = lambda path, body: self.signed(
            200, {"code": "0"}
        )
        app = Flask("scripted_govdata")

        @app.post("/<path:path>")
        def anything(path: str) -> Response:
            return self.endpoint.handle(lambda body: self.reply(path, body))

        self.sim = serve(app)
        self.url = self.sim.url

    def signed(self, status: int, body: dict[str, Any]) -> Response:
        return self.endpoint.answer(status, body)

    @staticmethod
    def signed_by(secret: str, status: int, body: dict[str, Any]) -> Response:
        return protocol.SignedEndpoint(protocol.credentials({"GOVDATA_SECRET": secret})).answer(status, body)


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.sim.stop()


@pytest.fixture
def scripted(scripted_server: ScriptedServer) -> Iterator[ScriptedServer]:
    yield scripted_server
    scripted_server.reply = lambda path, body: scripted_server.signed(200, {"code": "0"})
