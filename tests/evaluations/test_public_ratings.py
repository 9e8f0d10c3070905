"""Public ratings exist only for a service item or a department that exists: 404 otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.db import db
from domain.catalog.models import Department
from tests.api.v1.applications.conftest import SS_CARD, seeded  # noqa: F401 - fixtures

ZERO = {"total": 0, "bad": 0, "bad_rectified": 0, "bad_rectified_by_default": 0, "satisfied_rate": None}


@pytest.mark.parametrize("code", ["11440100007504956C3000110009999", "x" * 5000, "%ff%fe", "%01", "a b"])
def test_ratings_of_an_unknown_service_are_not_found(client: Any, seeded: None, code: str) -> None:  # noqa: F811
    resp = client.get(f"/v1/services/{code}/ratings")
    assert resp.status_code == 404, (code, resp.get_json())
    assert resp.get_json()["error"]["code"] == "catalog.item_not_found"
    # The same code as the service guide answers.
    assert client.get(f"/v1/services/{code}").status_code == 404


@pytest.mark.parametrize("name", ["没有这个部门", "x" * 5000, "%ff%fe", "%01", "%0a"])
def test_ratings_of_an_unknown_department_are_not_found(client: Any, seeded: None, name: str) -> None:  # noqa: F811
    resp = client.get(f"/v1/departments/{name}/ratings")
    assert resp.status_code == 404, (name, resp.get_json())
    assert resp.get_json()["error"]["code"] == "catalog.department_not_found"


def test_a_known_service_or_department_nobody_rated_yet_has_zero_figures(client: Any, seeded: None) -> None:  # noqa: F811
    service = client.get(f"/v1/services/{SS_CARD}/ratings")
    assert service.status_code == 200 and service.get_json().items() >= ZERO.items()
    name = db.session().scalars(select(Department.name)).first()
    department = client.get(f"/v1/departments/{name}/ratings")
    assert department.status_code == 200 and department.get_json().items() >= ZERO.items()
