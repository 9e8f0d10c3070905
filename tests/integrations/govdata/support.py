"""Picking people and certificates of the seeded population (shared by the govdata tests)."""

from __future__ import annotations

from collections.abc import Callable

from integrations.govdata.certificates import Certificate, CertificateRegistry
from integrations.govdata.population import Person, Population
from integrations.govdata.records import record

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check_char(first17: str) -> str:
    """GB 11643 check character, computed here independently of the code under test."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def person_where(population: Population, test: Callable[[Person], bool]) -> Person:
    found = next((p for p in population.people.values() if test(p)), None)
    assert found is not None, "the seeded population has nobody like that"
    return found


def with_record(population: Population, dataset: str) -> Person:
    return person_where(population, lambda p: record(p, dataset) is not None)


def outsider_id(population: Population) -> str:
    """A valid ID number of somebody who is not in the population (the exchange knows nothing of them)."""
    for seq in range(100, 1000):
        number = with_check_char(f"44010619910101{seq:03d}")
        if population.get(number) is None:
            return number
    raise AssertionError("no free ID number")


def without_record(population: Population, dataset: str) -> str:
    """The ID number of someone the exchange has no record of in `dataset`."""
    person = next((p for p in population.people.values() if record(p, dataset) is None), None)
    return person.id_number if person is not None else outsider_id(population)


def first_cert(registry: CertificateRegistry, test: Callable[[Certificate], bool]) -> Certificate:
    found = next((c for c in registry.by_id.values() if test(c)), None)
    assert found is not None, "the seeded registry has no such certificate"
    return found
