"""Fixtures for shared data and the wallet: people of the seeded population, simulator control."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from domain.identity import hall
from integrations.govdata.certificates import CertificateRegistry
from integrations.govdata.population import Person, Population
from tests.api.v1.applications.conftest import officer, seeded  # noqa: F401 (fixtures)
from tests.conftest import make_citizen

POPULATION = Population()
REGISTRY = CertificateRegistry(POPULATION)


def person_where(test: Callable[[Person], bool], skip: int = 0) -> Person:
    """The first person of the seeded population for whom `test` holds (after `skip` such)."""
    found = [p for p in POPULATION.people.values() if test(p)]
    assert len(found) > skip, "the seeded population has nobody like that"
    return found[skip]


def certs(person: Person, type_code: str) -> list[Any]:
    return [c for c in REGISTRY.of(person.id_number) if c.type_code == type_code]


def verified_as(app: Any, person: Person, **kw: Any) -> dict:
    """A citizen logged in and verified in person at a hall as `person` (L3, fresh)."""
    from core.db import db

    who = make_citizen(app, **kw)
    hall.record_in_person(
        db.session(),
        deps=app.extensions["yiwang"].identity,
        operator_id="op-test",
        account_id=who["account_id"],
        name=person.name,
        id_number=person.id_number,
        hall="天河区政务服务中心",
        request_id=None,
    )
    return who | {"name": person.name, "id_number": person.id_number, "person": person}


@pytest.fixture(autouse=True)
def _reset_sims(exchange_sim: Any, ecert_sim: Any) -> Iterator[None]:
    """Each test starts with no authorisations and every certificate in its seeded state."""
    httpx.post(f"{exchange_sim.url}_sim/reset")
    httpx.post(f"{ecert_sim.url}_sim/reset")
    yield


def sim(url: str, path: str, body: dict | None = None) -> Any:
    resp = httpx.post(f"{url}{path}", json=body or {}) if body is not None else httpx.get(f"{url}{path}")
    resp.raise_for_status()
    return resp.json()
