"""Where an operator may act: the halls of a hall officer, the departments of a case operator.

An admin sets an operator's hall ids and department codes (`service.create_operator`,
`service.update_operator`). A list left empty does not restrict (an operator with no halls may
work at any hall, as before halls were assigned), and operators with the admin role are never
restricted. The services that act at a hall or on a department's items take the request's
`Scope` and refuse what lies outside it: 403 `admin.out_of_scope` for a hall the officer names,
404 (as if it did not exist) for another department's complaint or rectification task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import Text
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


UNSCOPED = Scope()


def scope_of(operator: Operator) -> Scope:
    """Where this operator may act, from its stored roles and assignments (admins: everywhere)."""
    return Scope.of(
        roles=operator.roles, hall_ids=operator.hall_ids, department_codes=operator.department_codes
    )
