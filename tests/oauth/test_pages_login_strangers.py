"""The OAuth sign-in page's SMS flow for a citizen whose address changes while signing in
(a phone's browser moving from Wi-Fi to 4G). The page keeps the challenge_id of its send."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.v1.test_sms_login import code_on_phone, deliver, wrong
from tests.oauth.test_pages_login import _login_page

PHONE = "13912340091"
WIFI = "10.60.0.1"
MOBILE = "10.61.0.1"
STRANGER = "10.62.0.1"


@pytest.fixture
def sim(sms_sim):
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    return sms_sim


def test_a_strangers_guesses_do_not_lock_the_citizen_out_of_the_sign_in_page(client, bank, sim):
    _, form = _login_page(client, bank)
    sent = client.post(
        "/oauth/login/sms/send", data={**form, "phone": PHONE}, environ_base={"REMOTE_ADDR": WIFI}
    )
    assert sent.status_code == 200
    deliver()
    code = code_on_phone(sim, PHONE)
    for _ in range(5):  # a stranger who knows the number, through the app's API
        client.post(
            "/v1/auth/sms/login",
            json={"phone": PHONE, "code": wrong(code)},
            environ_base={"REMOTE_ADDR": STRANGER},
        )
    done = client.post(
        "/oauth/login/sms", data={**form, "phone": PHONE, "code": code}, environ_base={"REMOTE_ADDR": MOBILE}
    )
    problem = re.findall(r"验证码[^<]*", done.get_data(as_text=True))
    assert done.status_code == 303, problem
