"""The FaceID simulator's control API (the simulator itself is tests/conftest.py `faceid_sim`)."""

from __future__ import annotations

import pytest

from integrations.simulator_server import ThreadedSimulator
from integrations.tencentcloud.faceid_sim_control import FaceIdSimControl


@pytest.fixture
def faceid(faceid_sim: ThreadedSimulator) -> FaceIdSimControl:
    """The FaceID simulator's control API, reset to its seeded state."""
    control = FaceIdSimControl(faceid_sim.url)
    control.reset()
    return control
