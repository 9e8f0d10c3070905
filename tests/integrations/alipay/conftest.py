"""The Alipay simulator's control API (the simulator itself is tests/conftest.py `alipay_sim`)."""

from __future__ import annotations

import pytest

from config import load_config
from integrations.alipay.sim_control import AlipaySimControl
from integrations.simulator_server import ThreadedSimulator


@pytest.fixture
def alipay(alipay_sim: ThreadedSimulator) -> AlipaySimControl:
    """The Alipay simulator's control API, reset to its seeded state."""
    control = AlipaySimControl(alipay_sim.url)
    control.reset()
    return control


@pytest.fixture
def cfg(alipay_sim: ThreadedSimulator) -> dict:
    """Test configuration pointing the client at the simulator (development keys)."""
    return vars(load_config("test")) | {"ALIPAY_GATEWAY": f"{alipay_sim.url}gateway.do"}
