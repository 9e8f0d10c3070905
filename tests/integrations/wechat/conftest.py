import pytest

from integrations.wechat.sim_control import WechatSimControl


@pytest.fixture
def wx(wechat_sim):
    """The WeChat simulator's control API, reset to its seeded state."""
    control = WechatSimControl(wechat_sim.url)
    control.reset()
    return control
