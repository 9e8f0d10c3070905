"""Finding a hall: the region filter follows GB/T 2260 levels (province, city, county)."""

from __future__ import annotations

from typing import Any

from core import clock as clock_mod
from core.db import db
from domain.appointments.models import Hall
from tests.appointments.conftest import ITEM, WEEKDAYS


def _hall(name: str, region: str) -> None:
    session = db.session()
    session.add(
        Hall(
            name=name, address="上海市", region=region, opening_hours=WEEKDAYS, windows=1,
            service_codes=[ITEM], slot_minutes=30, capacity_per_window=2, created_at=clock_mod.now(),
        )
    )  # fmt: skip
    session.commit()


def _names(client: Any, region: str) -> list[str]:
    resp = client.get(f"/v1/halls?region={region}")
    assert resp.status_code == 200, resp.get_json()
    return sorted(h["name"] for h in resp.get_json())


def test_region_filter_matches_province_city_or_exactly_one_county(app: Any, client: Any) -> None:
    _hall("杨浦区行政服务中心", "310110")
    _hall("闵行区行政服务中心", "310112")
    _hall("浦东新区市民中心", "310115")
    _hall("天河区政务服务中心", "440106")
    # A county code ending in 0 is that county alone (its 0 is not a wildcard).
    assert _names(client, "310110") == ["杨浦区行政服务中心"]
    # A city (XXXX00) covers its counties, a province (XX0000) its cities; nothing across them.
    shanghai = sorted(["杨浦区行政服务中心", "闵行区行政服务中心", "浦东新区市民中心"])
    assert _names(client, "310100") == shanghai
    assert _names(client, "310000") == shanghai
    assert _names(client, "440100") == ["天河区政务服务中心"]
    assert _names(client, "440000") == ["天河区政务服务中心"]
    assert _names(client, "440300") == []


def test_region_must_be_six_ascii_digits(app: Any, client: Any) -> None:
    _hall("杨浦区行政服务中心", "310110")
    for bad in ("３１０１１０", "31011", "3101100", "31011a", "310110%0A"):  # full-width, short, long, …
        resp = client.get(f"/v1/halls?region={bad}")
        assert resp.status_code == 422, (bad, resp.get_json())
        assert resp.get_json()["error"]["code"] == "request.validation_failed", resp.get_json()
