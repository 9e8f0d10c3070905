"""An operator's scope: what the stored halls and departments restrict, and what they do not."""

from __future__ import annotations

import pytest

from domain.operators.errors import HallRequired, OutOfScope
from domain.operators.scope import UNSCOPED, Scope


def test_empty_assignments_and_the_admin_role_restrict_nothing() -> None:
    assert Scope.of(roles=["hall_officer"], hall_ids=None, department_codes=[]) == UNSCOPED
    assert Scope.of(roles=["admin", "hall_officer"], hall_ids=["h1"], department_codes=["health"]) == UNSCOPED
    assert UNSCOPED.hall_for("any-hall") == "any-hall" and UNSCOPED.allows_department(None)
    with pytest.raises(HallRequired):  # not tied to halls: the hall must be named
        UNSCOPED.hall_for(None)


def test_a_hall_officer_acts_only_at_their_halls() -> None:
    one = Scope.of(roles=["hall_officer"], hall_ids=["h1"], department_codes=None)
    assert one.hall_for(None) == "h1" and one.hall_for("h1") == "h1"
    with pytest.raises(OutOfScope) as refused:
        one.hall_for("h2")
    assert refused.value.status == 403 and refused.value.code == "admin.out_of_scope"
    two = Scope.of(roles=["hall_officer"], hall_ids=["h1", "h2"], department_codes=None)
    with pytest.raises(HallRequired):
        two.hall_for(None)
    assert two.departments is None and two.allows_department("health")  # halls do not bind departments


def test_a_department_scope_excludes_items_without_a_department() -> None:
    scope = Scope.of(roles=["case_operator"], hall_ids=[], department_codes=["health"])
    assert scope.allows_department("health")
    assert not scope.allows_department("taxation") and not scope.allows_department(None)
    assert scope.halls is None and scope.scoped


def test_a_case_of_several_departments_is_in_the_scope_of_each() -> None:
    scope = Scope.of(roles=["case_operator"], hall_ids=[], department_codes=["health"])
    assert scope.allows_any_department({"public_security", "health"})
    assert not scope.allows_any_department({"public_security"}) and not scope.allows_any_department(set())
    assert UNSCOPED.allows_any_department(set())
