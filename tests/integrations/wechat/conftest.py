import pytest

from integrations.wechat.sim_control import WechatSimControl


@pytest.fixture
def wx(wechat_sim):
    """The WeChat simulator's control API, reset to its seeded state, and again afterwards (the
    simulator serves the whole session: a fault left on would fail the next test)."""
    control = WechatSimControl(wechat_sim.url)
    control.reset()
    yield control
    control.reset()
