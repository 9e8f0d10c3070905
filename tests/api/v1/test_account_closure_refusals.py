"""A refused closure leaves an audit event (`account.closure_refused`) that outlives the refused
request's rolled-back transaction, naming the reason and the kinds of blockers only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.audit import AuditEvent
from core.db import db
from domain.accounts.models import Account
from domain.closure import service as closure
from tests.api.v1.test_account_closure import close
from tests.conftest import make_citizen

PHONE = "13912340077"
COMPLAINT = {"kind": "complaint", "category": "efficiency", "text": "窗口排队太久"}


def events(account_id: str, action: str) -> list[AuditEvent]:
    session = db.session()
    session.rollback()  # read what was committed, not what this session holds
    mine = AuditEvent.target_id == account_id, AuditEvent.action == action
    return list(session.scalars(select(AuditEvent).where(*mine).order_by(AuditEvent.at)))


def test_a_closure_refused_for_an_old_login_is_audited(app: Any, client: Any, clock: Any) -> None:
    who = make_citizen(app, phone=PHONE)
    clock.advance(closure.FRESH_LOGIN.total_seconds() + 1)
    resp = close(client, who)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "account.closure_login_required"
    [event] = events(who["account_id"], "account.closure_refused")
    assert (event.actor_type, event.actor_id) == ("citizen", who["account_id"])
    assert event.target_type == "account" and event.outcome == "denied"
    assert event.details == {"reason": "login_required"}
    assert event.request_id  # ties it to the request's log lines
    assert PHONE not in str(event.details)
    # The refusal itself wrote nothing else: the account goes on, and no closure is recorded.
    assert db.session().get(Account, who["account_id"]).closed_at is None
    assert events(who["account_id"], "account.closed") == []
    assert client.get("/v1/me", headers=who["headers"]).status_code == 200


def test_a_closure_refused_for_blockers_is_audited_with_their_kinds_only(app: Any, client: Any) -> None:
    who = make_citizen(app, phone=PHONE)
    made = client.post("/v1/complaints", json=COMPLAINT, headers=who["headers"])
    assert made.status_code == 201, made.get_json()
    for _ in range(2):  # each attempt is one event
        resp = close(client, who, **{"Accept-Language": "en"})
        assert resp.status_code == 409
        assert resp.get_json()["error"]["code"] == "account.closure_blocked"
    found = events(who["account_id"], "account.closure_refused")
    assert len(found) == 2
    event = found[0]
    assert (event.actor_type, event.actor_id, event.outcome) == ("citizen", who["account_id"], "rejected")
    assert event.details == {"reason": "blocked", "blockers": {"complaint": 1}, "fresh_login": True}
    # No complaint number, text or id: the kinds are enough to see what stood in the way.
    assert made.get_json()["id"] not in str(event.details) and "排队" not in str(event.details)
    assert db.session().get(Account, who["account_id"]).closed_at is None
    assert events(who["account_id"], "account.closed") == []


def test_a_closure_that_succeeds_records_no_refusal(app: Any, client: Any) -> None:
    who = make_citizen(app)
    assert close(client, who).status_code == 200
    assert events(who["account_id"], "account.closure_refused") == []
    assert len(events(who["account_id"], "account.closed")) == 1


def test_a_refusal_records_the_address_it_came_from(app: Any, client: Any, clock: Any) -> None:
    who = make_citizen(app)
    clock.advance(closure.FRESH_LOGIN.total_seconds() + 1)
    assert close(client, who).status_code == 403
    [event] = events(who["account_id"], "account.closure_refused")
    assert event.ip == "127.0.0.1"  # the test client's address, as other citizen events record it


def test_closure_attempts_are_limited_per_account(app: Any, client: Any, clock: Any) -> None:
    """Each refused attempt locks the account and writes a permanent audit event: a stolen token
    with a new Idempotency-Key each time may not make them without end."""
    who, other = make_citizen(app, phone=PHONE), make_citizen(app)
    clock.advance(closure.FRESH_LOGIN.total_seconds() + 1)
    for _ in range(closure.ATTEMPTS_PER_HOUR):
        assert close(client, who).status_code == 403
    limited = close(client, who)
    assert limited.status_code == 429, limited.get_json()
    error = limited.get_json()["error"]
    assert error["code"] == "rate_limited" and "操作过于频繁" in error["message"]
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert error["details"]["retry_after"] == int(limited.headers["Retry-After"])
    english = close(client, who, **{"Accept-Language": "en"})
    assert english.status_code == 429 and "Too many requests" in english.get_json()["error"]["message"]
    # The limited attempts took no lock and wrote nothing.
    assert len(events(who["account_id"], "account.closure_refused")) == closure.ATTEMPTS_PER_HOUR
    assert close(client, other).status_code == 403  # another account's attempts are its own
    clock.advance(int(limited.headers["Retry-After"]))
    again = make_citizen(app, phone=PHONE)  # an hour on, logged in afresh: the closure goes ahead
    assert again["account_id"] == who["account_id"]
    assert close(client, again).status_code == 200
