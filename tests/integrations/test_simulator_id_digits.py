"""Every simulator reads an ID number as the real platforms do: ASCII digits only. A number typed
in full-width digits must be refused in test and staging runs as it is in production."""

from __future__ import annotations

from datetime import date

import pytest

from integrations.alipay.simulator import _valid_cert_no
from integrations.idcheck.simulator import id_number_well_formed
from integrations.wechat.face_sim import _well_formed_id

ASCII = "110101199003078515"  # 张三 of the demo register: valid
FULL = ASCII[0] + ASCII[1:17].translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)}) + ASCII[17]


@pytest.mark.parametrize(
    "check",
    [lambda v: id_number_well_formed(v, date(2026, 12, 7)), _valid_cert_no, _well_formed_id],
    ids=["idcheck", "alipay", "wechat"],
)
def test_full_width_digits_are_refused(check):
    assert check(ASCII) is True
    assert check(FULL) is False, FULL
