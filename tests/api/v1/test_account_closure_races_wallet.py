"""The wallet and the mini-program's subscription report racing a closure: a request that read
the account as open, then waited on the certificate library (or wrote with a Core insert), is
refused with a clear 404 and leaves nothing on the closed account; never a 500."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from core.db import db
from domain.accounts.models import Account
from domain.wallet.models import Presentation, WalletCertificate
from notifications.models import WechatSubscription
from tests.api.v1.identity.conftest import mini_citizen, wx  # noqa: F401 - fixtures
from tests.api.v1.test_account_closure import close
from tests.api.v1.test_account_closure_races import closed_while, during_closure
from tests.concurrency import Competing
from tests.shared_data.conftest import verified_as
from tests.shared_data.test_wallet import ID_CARD, W, holder_of_valid_id, of_type, wallet


def closed_while_the_library_answers(monkeypatch: Any, app: Any, who: dict, method: str) -> list[Competing]:
    """The library answers `method` slowly: the citizen closes the account on their other phone
    meanwhile (the closure commits before the library's answer is used)."""
    ecert = app.extensions["yiwang"].govdata.ecert
    real = getattr(ecert, method)
    others: list[Competing] = []

    def slow(**kw: Any) -> Any:
        out = real(**kw)
        if not others:
            others.append(Competing(app, lambda http: close(http, who)))
            closed = others[0].result()
            assert closed.status_code == 200, closed.get_json()
        return out

    monkeypatch.setattr(ecert, method, slow)
    return others


def refused_as_closed(answer: Any) -> None:
    assert answer.status_code == 404, answer.get_data(as_text=True)  # not a 500, not a 200
    assert answer.get_json()["error"]["code"] == "account.not_found"


def left_on(model: type, account_id: str) -> list[Any]:
    session = db.session()
    session.rollback()
    assert session.get(Account, account_id).closed_at is not None
    return list(session.scalars(select(model).where(model.account_id == account_id)))


def test_a_wallet_opened_while_the_account_closes_stores_no_certificates(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    who = verified_as(app, holder_of_valid_id())
    others = closed_while_the_library_answers(monkeypatch, app, who, "list")
    refused_as_closed(client.get(W, headers=who["headers"]))
    assert others, "the closure never ran"
    assert left_on(WalletCertificate, who["account_id"]) == []


def test_a_certificate_presented_while_the_account_closes_is_a_clear_refusal(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    others = closed_while_the_library_answers(monkeypatch, app, who, "detail")
    refused_as_closed(client.post(f"{W}/{card['id']}/presentations", headers=who["headers"]))
    assert others, "the closure never ran"
    assert left_on(Presentation, who["account_id"]) == []
    assert left_on(WalletCertificate, who["account_id"]) == []


def test_a_certificate_shown_while_the_account_closes_is_a_clear_refusal(
    app: Any, client: Any, monkeypatch: Any
) -> None:
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    others = closed_while_the_library_answers(monkeypatch, app, who, "detail")
    refused_as_closed(client.get(f"{W}/{card['id']}?reveal=true", headers=who["headers"]))
    assert others, "the closure never ran"
    assert left_on(WalletCertificate, who["account_id"]) == []


def test_a_subscription_report_during_the_closure_is_refused(
    app: Any,
    client: Any,
    wx: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    who = mini_citizen(client, wx)
    body = {"results": {"tpl_application_progress": "accept"}}
    headers = who["headers"] | {"Idempotency-Key": uuid.uuid4().hex}
    others = during_closure(
        monkeypatch, app, lambda http: http.post("/v1/miniprogram/subscriptions", json=body, headers=headers)
    )
    answer = closed_while(client, who, others)
    assert answer.status_code in (401, 404), answer.get_data(as_text=True)
    assert left_on(WechatSubscription, who["account_id"]) == []
