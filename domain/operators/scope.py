"""Where an operator may act: the halls of a hall officer, the departments of a case operator.

An admin sets an operator's hall ids and department codes (`service.create_operator`,
`service.update_operator`). A list left empty does not restrict (an operator with no halls may
work at any hall, as before halls were assigned), and operators with the admin role are never
restricted. The services that act at a hall or on a department's items take the request's
`Scope` and refuse what lies outside it: 403 `admin.out_of_scope` for a hall the officer names,
404 (as if it did not exist) for another department's complaint or rectification task.

A case belongs to every department handling one of its items, as pinned: a bundle (一件事) of
several departments' items is each of theirs (`Scope.allows_any_department` with
`department_codes_of`, `handled_by` in SQL for lists and figures).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ColumnElement, Integer, column, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from core.errors import Text
from domain.catalog.models import ServiceItem, ServiceItemVersion
from domain.operators.errors import HallRequired, OutOfScope
from domain.operators.models import ROLE_ADMIN, Operator


@dataclass(frozen=True)
class Scope:
    """The effective scope of an operator: None is every hall (or department)."""

    halls: frozenset[str] | None = None
    departments: frozenset[str] | None = None

    @classmethod
    def of(cls, *, roles: Any, hall_ids: Any, department_codes: Any) -> Scope:
        """The scope an operator's stored roles and assignments give (admins: none)."""
        if ROLE_ADMIN in (roles or ()):
            return UNSCOPED
        return cls(frozenset(hall_ids or ()) or None, frozenset(department_codes or ()) or None)

    @property
    def scoped(self) -> bool:
        return self.halls is not None or self.departments is not None

    def hall_for(self, hall_id: str | None) -> str:
        """The hall an officer acts at: the one named, which must be one of theirs (403
        `admin.out_of_scope`), or, named none, their only hall (422 `admin.hall_required` when
        they have several or are not tied to halls)."""
        if hall_id is None:
            if self.halls is not None and len(self.halls) == 1:
                return next(iter(self.halls))
            raise HallRequired(
                fields={"hall_id": [Text("Required: the hall where you are", "请选择您所在的大厅")]}
            )
        if self.halls is not None and hall_id not in self.halls:
            raise OutOfScope(details={"hall_id": hall_id})
        return hall_id

    def allows_department(self, code: str | None) -> bool:
        """Whether an item of department `code` (None: no department known) is in scope."""
        return self.departments is None or code in self.departments

    def allows_any_department(self, codes: Iterable[str | None]) -> bool:
        """Whether a case handled by departments `codes` (a bundle's may be several) is in
        scope: one of them is the operator's."""
        return self.departments is None or not self.departments.isdisjoint(codes)


UNSCOPED = Scope()


def scope_of(operator: Operator) -> Scope:
    """Where this operator may act, from its stored roles and assignments (admins: everywhere)."""
    return Scope.of(
        roles=operator.roles, hall_ids=operator.hall_ids, department_codes=operator.department_codes
    )


class _json_array_elements(FunctionElement[Any]):
    """The elements of a JSON array as rows with a `value` column: PostgreSQL's
    `json_array_elements`, SQLite's `json_each`."""

    name = "json_array_elements"
    inherit_cache = True


@compiles(_json_array_elements)
def _json_each(element: _json_array_elements, compiler: Any, **kw: Any) -> str:
    return f"json_each({compiler.process(element.clauses, **kw)})"


@compiles(_json_array_elements, "postgresql")
def _json_array_elements_pg(element: _json_array_elements, compiler: Any, **kw: Any) -> str:
    # A value that is not an array (JSON null, an object) unpacks as no items, as json_each
    # does on SQLite, instead of failing the whole statement.
    value = compiler.process(element.clauses, **kw)
    return f"json_array_elements(CASE WHEN json_typeof({value}) = 'array' THEN {value} ELSE '[]'::json END)"


class _pinned_version(FunctionElement):
    """The `version` of one unpacked pin as an integer; on PostgreSQL a value that is not a JSON
    number is NULL (matching nothing) instead of a failed cast that would fail the whole list."""

    type = Integer()
    inherit_cache = True


@compiles(_pinned_version)
def _pinned_version_default(element: _pinned_version, compiler: Any, **kw: Any) -> str:
    (value,) = element.clauses
    return compiler.process(value["version"].as_integer(), **kw)


@compiles(_pinned_version, "postgresql")
def _pinned_version_pg(element: _pinned_version, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return (
        f"CASE WHEN json_typeof(({value}) -> 'version') = 'number'"
        f" AND (({value}) ->> 'version') ~ '^[0-9]{{1,9}}$'"
        f" THEN CAST(({value}) ->> 'version' AS INTEGER) END"
    )


def handled_by(items: Any, departments: Iterable[str]) -> ColumnElement[bool]:
    """SQL: one of the pinned items in `items` (an application's `items` column, `[{code,
    version}]`) is handled by one of `departments`, as its pinned version names it: the SQL twin
    of `department_codes_of`, for lists and figures scoped to an operator's departments.

    The pins of those departments are one uncorrelated subquery over the catalog's versions
    (PostgreSQL hashes it once per statement); each case only unpacks its own few items."""
    item = _json_array_elements(items).table_valued(column("value", JSON)).alias("pinned_item")
    V = ServiceItemVersion
    pins = (
        select(ServiceItem.code, V.version)
        .join(V, V.item_id == ServiceItem.id)
        .where(V.document["department"].as_string().in_(sorted(departments)))
    )
    pinned = tuple_(item.c.value["code"].as_string(), _pinned_version(item.c.value))
    return select(1).select_from(item).where(pinned.in_(pins)).exists()
