"""The application view's masking of prefilled values."""

from __future__ import annotations

import copy

from domain.applications.views import _masked


def test_masked_values_replace_only_their_own_paths_and_leave_the_data_alone():
    data = {
        "applicant": {"name": "张三", "id_number": "110101199003078515", "nation": "汉"},
        "contact": {"phone": "13800138000", "address": {"city": "广州", "line": "体育西路191号"}},
        "reason": "补领",
    }
    before = copy.deepcopy(data)
    provenance = {
        "applicant.name": {"source": "identity", "masked": "张*"},
        "applicant.id_number": {"source": "identity", "masked": "110101********8515"},
        "contact.phone": {"source": "profile", "masked": "138****8000"},
        "contact.address.line": {"source": "user"},  # typed: shown as typed
        "contact.email": {"source": "profile", "masked": "z***@example.cn"},  # no value: nothing shown
    }
    shown = _masked(data, provenance)
    assert data == before  # the stored data is not what the view changes
    assert shown == {
        "applicant": {"name": "张*", "id_number": "110101********8515", "nation": "汉"},
        "contact": {"phone": "138****8000", "address": {"city": "广州", "line": "体育西路191号"}},
        "reason": "补领",
    }
