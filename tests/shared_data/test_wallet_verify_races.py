"""An officer scans a code while its certificate leaves the wallet (the holder closes the account,
or the holder's wallet drops a certificate the library no longer lists): the officer is told
clearly that the code no longer stands (404 `certificate.presentation_withdrawn`), never a 500 or
a 503 of a deadlock, and nothing of the scan is written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.audit import AuditEvent
from core.db import db
from domain.accounts.models import Account
from domain.ledger.models import DataAccess
from domain.wallet.models import Presentation, WalletCertificate
from tests.api.v1.test_account_closure import close
from tests.concurrency import Competing
from tests.shared_data.conftest import verified_as
from tests.shared_data.test_wallet import (  # noqa: F401 - fixture
    ID_CARD,
    W,
    hall_officer,
    holder_of_valid_id,
    of_type,
    present,
    verify,
    wallet,
)


def while_the_library_answers(monkeypatch: Any, app: Any, request: Any) -> list[Competing]:
    """The library answers the officer's check slowly: `request` (given a test client) runs
    meanwhile; the list gets the Competing request (not waited for: it may queue on a lock)."""
    ecert = app.extensions["yiwang"].govdata.ecert
    real = ecert.detail
    others: list[Competing] = []

    def slow(**kw: Any) -> Any:
        out = real(**kw)
        if not others:
            others.append(Competing(app, request))
        return out

    monkeypatch.setattr(ecert, "detail", slow)
    return others


def withdrawn(answer: Any) -> None:
    assert answer.status_code == 404, answer.get_data(as_text=True)  # not a 500, 503 or 200
    error = answer.get_json()["error"]
    assert error["code"] == "certificate.presentation_withdrawn"
    assert "失效" in error["message"]


def nothing_of_the_scan(account_id: str) -> None:
    session = db.session()
    session.rollback()
    lines = session.scalars(select(DataAccess.purpose).where(DataAccess.account_id == account_id))
    assert "亮证核验" not in list(lines)
    verified = select(AuditEvent.id).where(AuditEvent.action == "certificate.verify")
    assert list(session.scalars(verified)) == []


def test_a_code_scanned_while_the_holder_closes_the_account_is_withdrawn(
    app: Any,
    client: Any,
    hall_officer: dict,  # noqa: F811
    monkeypatch: Any,
) -> None:
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    others = while_the_library_answers(monkeypatch, app, lambda http: close(http, who))
    withdrawn(verify(client, hall_officer, token))
    assert others, "the closure never ran"
    closed = others[0].result()
    assert closed.status_code == 200, closed.get_json()
    # The scan held no lock while the library answered: the closure did not queue behind it.
    assert not others[0].waited
    nothing_of_the_scan(who["account_id"])
    session = db.session()
    assert session.get(Account, who["account_id"]).closed_at is not None
    mine = Presentation.account_id == who["account_id"]
    assert list(session.scalars(select(Presentation.id).where(mine))) == []


def test_a_code_scanned_after_the_account_closed_is_withdrawn(
    app: Any,
    client: Any,
    hall_officer: dict,  # noqa: F811
) -> None:
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    assert close(client, who).status_code == 200
    english = verify(client, hall_officer | {"Accept-Language": "en"}, token)
    assert english.status_code == 404, english.get_json()
    assert english.get_json()["error"]["code"] == "certificate.presentation_withdrawn"
    assert "no longer" in english.get_json()["error"]["message"]
    withdrawn(verify(client, hall_officer, token))
    nothing_of_the_scan(who["account_id"])


def test_a_code_scanned_while_the_wallet_drops_its_certificate_is_withdrawn(
    app: Any,
    client: Any,
    hall_officer: dict,  # noqa: F811
    monkeypatch: Any,
) -> None:
    """The holder opens the wallet on their phone while the officer's check waits on the library,
    and the library no longer lists the card: the wallet deletes it (and the code with it)."""
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    ecert = app.extensions["yiwang"].govdata.ecert
    real_list = ecert.list

    def without_the_card(**kw: Any) -> Any:
        return [c for c in real_list(**kw) if c["identifier"] != card["identifier"]]

    monkeypatch.setattr(ecert, "list", without_the_card)
    others = while_the_library_answers(monkeypatch, app, lambda http: http.get(W, headers=who["headers"]))
    withdrawn(verify(client, hall_officer, token))
    assert others, "the wallet was never opened"
    opened = others[0].result()
    assert opened.status_code == 200, opened.get_json()
    assert card["identifier"] not in {c["identifier"] for c in opened.get_json()["certificates"]}
    nothing_of_the_scan(who["account_id"])
    session = db.session()
    assert session.get(WalletCertificate, card["id"]) is None
