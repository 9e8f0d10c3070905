"""Every shared-data source a form can bind to is answered by a real data item and field."""

from __future__ import annotations

import pytest

from domain.catalog.sources import PREFILL_SOURCES, SHARED_DATASETS
from domain.shared_data.mapping import FIELD_SOURCES, SENSITIVE_SOURCES, value_at
from integrations.govdata.records import RECORDS, record
from tests.shared_data.conftest import POPULATION

SHARED = sorted(s for s in PREFILL_SOURCES if s.startswith("shared."))


def test_every_shared_source_is_mapped_and_nothing_else_is():
    assert sorted(FIELD_SOURCES) == SHARED
    assert set(SENSITIVE_SOURCES) <= set(FIELD_SOURCES)
    assert {d for d, _ in FIELD_SOURCES.values()} <= set(SHARED_DATASETS) & set(RECORDS)


@pytest.mark.parametrize("source", SHARED)
def test_the_exchange_answers_every_bound_field_for_somebody(source):
    dataset, key = FIELD_SOURCES[source]
    values = [
        value_at(found, key) for p in POPULATION.people.values() if (found := record(p, dataset)) is not None
    ]
    assert any(v not in (None, "") for v in values), f"{source}: no person's {dataset} has {key}"
