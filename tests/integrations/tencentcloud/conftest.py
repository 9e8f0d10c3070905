"""The FaceID simulator's control API (the simulator itself is tests/conftest.py `faceid_sim`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.simulator_server import ThreadedSimulator
from integrations.tencentcloud.faceid_sim_control import FaceIdSimControl


@pytest.fixture
def faceid(faceid_sim: ThreadedSimulator) -> Iterator[FaceIdSimControl]:
    """The FaceID simulator's control API, reset to its seeded state, and again afterwards: the
    simulator serves the whole session, and a fault left on (down, queued errors) would fail
    whichever test the same process runs next."""
    control = FaceIdSimControl(faceid_sim.url)
    control.reset()
    yield control
    control.reset()
