"""The two-element check simulator on a random port, its control API, and a client pointed at it.

The simulator is built from the test configuration alone (no database), so these tests stay fast.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from config import TestConfig
from integrations.idcheck.client import IdCheckClient
from integrations.idcheck.sim_control import IdCheckSimControl
from integrations.idcheck.simulator import create_simulator
from integrations.simulator_server import ThreadedSimulator

# Short, so the timeout test stays short; far above a normal local answer.
CLIENT_TIMEOUT = 0.5


@pytest.fixture(scope="session")
def sim_config() -> dict[str, Any]:
    return vars(TestConfig())


@pytest.fixture(scope="session")
def idcheck_server(sim_config: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    sim = ThreadedSimulator(create_simulator(sim_config)).start()
    yield sim
    sim.stop()


@pytest.fixture
def control(idcheck_server: ThreadedSimulator) -> IdCheckSimControl:
    """The simulator's control API, reset to its seeded state."""
    ctl = IdCheckSimControl(idcheck_server.url)
    ctl.reset()
    return ctl


@pytest.fixture
def make_checker(
    sim_config: dict[str, Any], idcheck_server: ThreadedSimulator
) -> Callable[..., IdCheckClient]:
    """An IdCheckClient from the config, with overrides (e.g. IDCHECK_APP_SECRET=...)."""

    def make(**overrides: Any) -> IdCheckClient:
        cfg = sim_config | {"IDCHECK_BASE_URL": idcheck_server.url, "PROVIDER_TIMEOUT": CLIENT_TIMEOUT}
        return IdCheckClient.from_config(cfg | overrides)

    return make


@pytest.fixture
def checker(make_checker: Callable[..., IdCheckClient], control: IdCheckSimControl) -> IdCheckClient:
    return make_checker()


class Tap:
    """WSGI middleware that records raw requests and can drop the response signature."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.strip_signature = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.requests.append((headers, body))

        def respond(status: str, response_headers: list, exc_info: Any = None) -> Any:
            if self.strip_signature:
                response_headers = [(k, v) for k, v in response_headers if k.lower() != "x-signature"]
            return start_response(status, response_headers, exc_info)

        return self.app(environ, respond)
