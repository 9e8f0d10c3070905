"""The public figures of 好差评, for a service item or a handling department that exists.

A name that is no item or department is 404, not a row of zeros: a zero would read as "nobody
rated it yet" for a typo. Known means the catalog has it (an item that was ever published, a
department by its name), or ratings were recorded for it (an item withdrawn or a department
renamed since keeps its history).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from domain.catalog.errors import DepartmentNotFound, ItemNotFound
from domain.catalog.models import Department, ServiceItem
from domain.catalog.reader import has_control_chars
from domain.evaluations import service
from domain.evaluations.models import Evaluation

# Longer than any column holding one (the item code, a department's name): names nothing.
_MAX_CODE = 64
_MAX_DEPARTMENT = 100


def _could_be(text: str, max_len: int) -> bool:
    """Nothing past a column's length or holding a control character (PostgreSQL text refuses NUL)
    is looked up."""
    return 0 < len(text) <= max_len and not has_control_chars(text)


def for_service(session: Session, code: str) -> dict[str, Any]:
    """Ratings of a service item by its implementation code; ItemNotFound (404) for no such item."""
    known = _could_be(code, _MAX_CODE) and session.scalar(
        select(
            exists().where(ServiceItem.code == code, ServiceItem.published_version.is_not(None))
            | exists().where(Evaluation.service_code == code)
        )
    )
    if not known:
        raise ItemNotFound()
    return service.ratings(session, service_code=code)


def for_department(session: Session, name: str) -> dict[str, Any]:
    """Ratings of a handling department by its name; DepartmentNotFound (404) for no such one."""
    known = _could_be(name, _MAX_DEPARTMENT) and session.scalar(
        select(exists().where(Department.name == name) | exists().where(Evaluation.department == name))
    )
    if not known:
        raise DepartmentNotFound()
    return service.ratings(session, department=name)
