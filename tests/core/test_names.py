"""core.names: the one canonical form of a Chinese name, shared by the domain and the integrations."""

from __future__ import annotations

import pytest

from core.names import canonical_name, same_name
from domain.identity import documents


def test_the_domain_keeps_the_core_rule_as_its_public_name():
    assert documents.canonical_name is canonical_name


@pytest.mark.parametrize(
    ("a", "b"),
    [("买买提·艾力", "买买提•艾力"), ("买买提·艾力", "买买提 · 艾力"), ("张三", "张\u3000三"),
     ("张三", " 张三 "), ("买买提·艾力", "买买提．艾力")],
)  # fmt: skip
def test_the_same_name_spelt_differently_is_the_same_name(a, b):
    assert same_name(a, b) and same_name(b, a)


@pytest.mark.parametrize(("a", "b"), [("张三", "张四"), ("张三", None), (None, None), ("张 San", "张San")])
def test_different_or_missing_names_are_not_the_same(a, b):
    assert not same_name(a, b)
