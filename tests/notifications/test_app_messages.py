"""Notices a convenience app posts: the same message id again is the same notice, and is not
counted against the app's daily quota a second time."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from core.errors import RateLimited
from notifications import app_messages


def _post(app: Any, person: dict, message_id: str) -> Any:
    svc = app.extensions["yiwang"]
    return app_messages.post(
        db.session(), svc.notifications.settings, svc.ratelimiter, account_id=person["account_id"],
        client_id="bank-app", client_name="某银行", message_id=message_id,
        title="账单提醒", body="您的账单已出",
    )  # fmt: skip


def test_retries_of_one_notice_do_not_spend_the_daily_quota(app: Any, person: dict) -> None:
    assert _post(app, person, "bill-1") is not None
    for _ in range(app_messages.PER_DAY):  # the app's network retries of the same notice
        assert _post(app, person, "bill-1") is None
    for n in range(2, app_messages.PER_DAY + 1):  # the rest of the day's new notices still go in
        assert _post(app, person, f"bill-{n}") is not None
    with pytest.raises(RateLimited):
        _post(app, person, "one-too-many")
    assert _post(app, person, "bill-1") is None  # a retry at the limit is still the same notice
