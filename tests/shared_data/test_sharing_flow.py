"""A draft fetches shared data and certificates with the citizen's consent: fields, materials, ledger."""

from __future__ import annotations

from typing import Any

from tests.api.v1.applications.conftest import create, error_code, get
from tests.shared_data.conftest import person_where, verified_as

HUKOU_MOVE = "11440100007502318X3000105015000"  # 户口迁入登记（夫妻投靠）: marriage, hukou, property


def _share(client: Any, who: dict, app: dict, **body: Any) -> Any:
    sharing = app["data_sharing"]
    payload = {"accepted": True, "text_version": sharing["text_version"]} | body
    return client.post(f"/v1/applications/{app['id']}/data-sharing", json=payload, headers=who["headers"])


def test_authorised_draft_is_filled_from_shared_data_and_certificates(app, client, seeded):
    person = person_where(lambda p: p.spouse is not None and "property" in p.extra)
    who = verified_as(app, person)
    draft = create(client, who, service_code=HUKOU_MOVE).get_json()
    sharing = draft["data_sharing"]
    assert sharing["authorised"] is False
    assert "婚姻登记信息" in sharing["text"] and "不动产登记信息" in sharing["text"]
    resp = _share(client, who, draft)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    prov = body["provenance"]
    spouse_paths = [p for p, v in prov.items() if v["source"] == "exchange:marriage.registration"]
    assert spouse_paths and all(prov[p]["verified"] and prov[p]["read_only"] for p in spouse_paths)
    print(body["data"], body["materials"], body["data_sharing"])
