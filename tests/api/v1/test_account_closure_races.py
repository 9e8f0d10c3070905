"""A closure and a submission of one of its drafts at once: the draft is either a case that
blocks the closure or gone before it was sent, never a submitted case of a closed account."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from core.db import db
from domain.accounts.models import Account
from domain.applications.models import Application
from domain.closure import blockers
from tests.api.v1.applications.conftest import seeded, submit, verified  # noqa: F401 - fixtures
from tests.api.v1.test_account_closure import close
from tests.concurrency import Competing
from tests.forwarding.conftest import ready


def test_a_submission_during_the_closure_finds_its_draft_gone(
    app: Any,
    client: Any,
    seeded: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    zhang = verified(app, 0)
    draft = ready(client, zhang)
    real_find = blockers.find
    fired = threading.Event()
    others: list[Competing] = []

    def find_then_submit(session: Any, account_id: str) -> list:
        found = real_find(session, account_id)
        if not fired.is_set():  # the closure has judged the draft: now the phone submits it
            fired.set()
            others.append(Competing(app, lambda http: submit(http, zhang, draft)))
        return found

    monkeypatch.setattr(blockers, "find", find_then_submit)
    closed = close(client, zhang)
    assert closed.status_code == 200, closed.get_json()
    submitted = others[0].result()
    assert submitted.status_code in (401, 404), submitted.get_json()
    session = db.session()
    session.rollback()
    assert session.get(Account, zhang["account_id"]).closed_at is not None
    left = session.scalars(select(Application.status).where(Application.account_id == zhang["account_id"]))
    assert list(left) == []
