"""A closure refused because a case of the account stayed held at every try (503
`account.closure_busy`, Retry-After 2) is audited, and is not one of the hour's
ATTEMPTS_PER_HOUR: the citizen retrying as told is not locked out by a writer they cannot see.
A refusal for anything else still counts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import db
from domain.accounts.models import Account
from domain.applications.models import Application
from domain.closure import service as closure
from tests.api.v1.applications.conftest import SS_CARD, create, seeded, zhang  # noqa: F401 - fixtures
from tests.api.v1.test_account_closure import close
from tests.api.v1.test_account_closure_refusals import events


@pytest.fixture
def held_case(client: Any, zhang: dict, monkeypatch: Any) -> Any:  # noqa: F811
    """zhang's draft, locked by a writer in another transaction for as long as the test runs."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the closure waits for it, never finds the case busy")
    monkeypatch.setattr(closure, "CASE_WAIT_SECONDS", 0.05)  # each refusal waits twice, briefly
    draft = create(client, zhang, service_code=SS_CARD)
    assert draft.status_code == 201, draft.get_json()
    writer = Session(bind=db.engine)
    writer.execute(select(Application).where(Application.id == draft.get_json()["id"]).with_for_update())
    try:
        yield writer
    finally:
        writer.rollback()
        writer.close()


def test_busy_refusals_are_audited_and_use_up_no_attempts(
    client: Any,
    zhang: dict,  # noqa: F811
    held_case: Any,
    clock: Any,
) -> None:
    for _ in range(closure.ATTEMPTS_PER_HOUR + 1):
        busy = close(client, zhang)
        assert busy.status_code == 503, busy.get_json()
        assert busy.get_json()["error"]["code"] == "account.closure_busy"
        assert busy.headers["Retry-After"] == "2"
    refused = events(zhang["account_id"], "account.closure_refused")
    assert len(refused) == closure.ATTEMPTS_PER_HOUR + 1  # each one, though nothing else was written
    mine = ("citizen", zhang["account_id"], "account", zhang["account_id"])
    for event in refused:
        assert (event.actor_type, event.actor_id, event.target_type, event.target_id) == mine
        assert event.outcome == "failed" and event.details == {"reason": "busy"}  # nothing personal
        assert event.request_id and event.ip == "127.0.0.1"
    held_case.rollback()  # the writer is done
    # Refusals for anything else count: ATTEMPTS_PER_HOUR old-login refusals, then 429.
    clock.advance(closure.FRESH_LOGIN.total_seconds() + 1)
    for _ in range(closure.ATTEMPTS_PER_HOUR):
        assert close(client, zhang).status_code == 403
    limited = close(client, zhang)
    assert limited.status_code == 429, limited.get_json()
    assert db.session().get(Account, zhang["account_id"]).closed_at is None


def test_the_retry_as_told_closes_the_account_once_the_case_is_free(
    client: Any,
    zhang: dict,  # noqa: F811
    held_case: Any,
) -> None:
    for _ in range(closure.ATTEMPTS_PER_HOUR):
        assert close(client, zhang).status_code == 503
    held_case.rollback()
    closed = close(client, zhang)
    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["drafts_deleted"] == 1


def test_past_the_hours_busy_give_backs_a_busy_answer_counts_as_an_attempt(
    client: Any,
    zhang: dict,  # noqa: F811
    held_case: Any,
    monkeypatch: Any,
) -> None:
    """A case held for good cannot make the account a busy answer (an audit event, a worker
    waiting) every second: past BUSY_GIVEN_BACK_PER_HOUR they count, and the hour's attempts end."""
    monkeypatch.setattr(closure, "BUSY_GIVEN_BACK_PER_HOUR", 2)
    statuses = [close(client, zhang).status_code for _ in range(2 + closure.ATTEMPTS_PER_HOUR + 1)]
    assert statuses == [503] * (2 + closure.ATTEMPTS_PER_HOUR) + [429]
