"""The Alipay simulator's control API (the simulator itself is tests/conftest.py `alipay_sim`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config import load_config
from integrations.alipay.sim_control import AlipaySimControl
from integrations.simulator_server import ThreadedSimulator


@pytest.fixture
def alipay(alipay_sim: ThreadedSimulator) -> Iterator[AlipaySimControl]:
    """The Alipay simulator's control API, reset to its seeded state, and again afterwards (the
    simulator serves the whole session: a fault left on would fail the next test)."""
    control = AlipaySimControl(alipay_sim.url)
    control.reset()
    yield control
    control.reset()


@pytest.fixture
def cfg(alipay_sim: ThreadedSimulator) -> dict:
    """Test configuration pointing the client at the simulator (development keys)."""
    return vars(load_config("test")) | {"ALIPAY_GATEWAY": f"{alipay_sim.url}gateway.do"}
