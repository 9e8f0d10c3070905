"""A submission under way (its case locked) when the citizen closes the account on another phone:
the submission lands and the closure is refused for the case it now has (409), or the closure
lands and the submission finds its draft gone (404); neither is the 503 of a deadlock. The
submission writes rows naming the account (its consent: a key-share lock on the account row)
and, for a certificate with no wallet row, the wallet's sync locks the account; the closure
must not wait for the case while it holds the account."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from core.db import db
from domain.applications import checks
from domain.applications.models import Application
from domain.wallet.models import WalletCertificate
from tests.api.v1.applications.conftest import seeded, submit  # noqa: F401 - fixtures
from tests.api.v1.test_account_closure import close
from tests.concurrency import Competing
from tests.shared_data.conftest import certs, person_where
from tests.shared_data.test_sharing_flow import ID_CARD, _ss_card_ready


def closure_refused_for_the_case(closed: Any, case_id: str) -> None:
    assert closed.status_code == 409, closed.get_data(as_text=True)  # not a 503 of a deadlock
    error = closed.get_json()["error"]
    assert error["code"] == "account.closure_blocked"
    assert [b["id"] for b in error["details"]["blockers"]] == [case_id]


def submitted_case(case_id: str) -> str:
    session = db.session()
    session.rollback()
    return session.scalar(select(Application.status).where(Application.id == case_id))


def test_a_certificate_checked_anew_at_submission_while_the_account_closes(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    """The attached ID card has no wallet row (it was attached on an account since merged into
    this one: wallet rows are not moved), so the submission reads the wallet from the library,
    its case locked; the closure starts meanwhile."""
    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD)), skip=5
    )
    who, ready = _ss_card_ready(app, client, person)
    session = db.session()
    session.execute(delete(WalletCertificate).where(WalletCertificate.account_id == who["account_id"]))
    session.commit()
    ecert = app.extensions["yiwang"].govdata.ecert
    real = ecert.list
    others: list[Competing] = []

    def slow(**kw: Any) -> Any:
        out = real(**kw)
        if not others:
            others.append(Competing(app, lambda http: close(http, who)))
        return out

    monkeypatch.setattr(ecert, "list", slow)
    submitted = submit(client, who, ready)
    assert others, "the submission never read the wallet"
    assert submitted.status_code == 200, submitted.get_data(as_text=True)
    closure_refused_for_the_case(others[0].result(), ready["id"])
    assert submitted_case(ready["id"]) == "submitted"


def _submitted_while_closing(
    app: Any, client: Any, monkeypatch: Any
) -> tuple[dict, dict, Any, list[Competing]]:
    """(citizen, draft, the submission's answer, the closure started once the submission held
    its case): no certificate to check, the closure starts from the data check."""
    person = person_where(
        lambda p: "insured_since" in p.extra and any(c.state == "01" for c in certs(p, ID_CARD)), skip=6
    )
    who, ready = _ss_card_ready(app, client, person)
    real = checks.check_data
    others: list[Competing] = []

    def then_close(*args: Any, **kw: Any) -> Any:
        if not others:
            others.append(Competing(app, lambda http: close(http, who)))
        return real(*args, **kw)

    monkeypatch.setattr(checks, "check_data", then_close)
    submitted = submit(client, who, ready)
    return who, ready, submitted, others


def test_a_submission_holding_its_case_while_the_account_closes(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    """No certificate to check: the closure starts once the submission holds its case."""
    who, ready, submitted, others = _submitted_while_closing(app, client, monkeypatch)
    assert others, "the submission never checked its data"
    assert submitted.status_code == 200, submitted.get_data(as_text=True)
    closure_refused_for_the_case(others[0].result(), ready["id"])
    assert submitted_case(ready["id"]) == "submitted"


def test_a_case_held_at_every_try_is_a_short_retry_never_a_wait_holding_the_account(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    # As on the last of several conflicts in a row: the closure does not fall back to waiting for
    # the case while it holds the account (the old deadlock); it answers a short retry, writes
    # nothing, and the submission lands. Tried again, the closure is refused for the case.
    from domain.closure import service as closure_service

    monkeypatch.setattr(closure_service, "CASE_LOCK_TRIES", 1)
    who, ready, submitted, others = _submitted_while_closing(app, client, monkeypatch)
    busy = others[0].result()
    assert submitted.status_code == 200, submitted.get_data(as_text=True)
    if db.engine.dialect.name == "postgresql":  # SQLite's one writer orders them instead
        assert busy.status_code == 503, busy.get_data(as_text=True)
        assert busy.get_json()["error"]["code"] == "account.closure_busy"
        assert busy.headers["Retry-After"] == "2"
        closure_refused_for_the_case(close(client, who), ready["id"])
    else:
        closure_refused_for_the_case(busy, ready["id"])
    assert submitted_case(ready["id"]) == "submitted"
