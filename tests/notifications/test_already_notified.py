"""Only a repeat of the same event counts as "already notified"; any other failure is loud."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.db import new_id
from tests.conftest import make_citizen
from tests.notifications.conftest import notify


def test_a_repeated_event_is_told_once(app: Any) -> None:
    from core.db import db
    from notifications.models import Notification

    person = make_citizen(app)
    first = notify(app, person, "case_accepted", key="case:1:accepted")
    assert first is not None
    assert notify(app, person, "case_accepted", key="case:1:accepted") is None
    rows = db.session().scalars(
        select(Notification.id).where(Notification.account_id == person["account_id"])
    )
    assert list(rows) == [first.id]


def test_an_event_that_cannot_be_stored_is_not_taken_for_a_repeat(app: Any) -> None:
    """A caller commits its change only with the citizen's notice: an insert that fails for any
    reason but the duplicate key (here an account that does not exist) must reach it."""
    with pytest.raises(IntegrityError):
        notify(app, {"account_id": new_id()}, "case_accepted")
