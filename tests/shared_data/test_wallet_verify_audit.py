"""The officer's scan decrypts the holder's name and ID number and sends them to the library
before it locks anything: that read is audited even when the scan is then refused (another
officer spent the code first, the account closed meanwhile)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.audit import AuditEvent
from core.db import db
from tests.api.v1.test_account_closure import close
from tests.concurrency import Competing
from tests.shared_data.conftest import verified_as
from tests.shared_data.test_wallet import (  # noqa: F401 - fixture
    ID_CARD,
    hall_officer,
    holder_of_valid_id,
    of_type,
    present,
    verify,
    wallet,
)


def _spy_library(monkeypatch: Any, app: Any, compete: Any) -> tuple[list[str], list[Competing]]:
    ecert = app.extensions["yiwang"].govdata.ecert
    real = ecert.detail
    asked: list[str] = []
    others: list[Competing] = []
    started: list[bool] = []

    def slow(**kw: Any) -> Any:
        asked.append(kw["id_number"])  # the full ID number leaves for the library
        out = real(**kw)
        if not started:
            started.append(True)
            others.append(Competing(app, compete))
        return out

    monkeypatch.setattr(ecert, "detail", slow)
    return asked, others


def _officer_reads(account_id: str) -> int:
    session = db.session()
    session.rollback()
    q = select(AuditEvent.id).where(
        AuditEvent.action == "pii.read",
        AuditEvent.actor_type == "operator",
        AuditEvent.target_id == account_id,
    )
    return len(list(session.scalars(q)))


def test_two_officers_scanning_one_code_both_reads_are_audited(app, client, hall_officer, monkeypatch):  # noqa: F811
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    asked, others = _spy_library(monkeypatch, app, lambda http: verify(http, hall_officer, token))
    first = verify(client, hall_officer, token)
    second = others[0].result()
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], (first.get_json(), second.get_json())  # no double use
    assert len(asked) == 2  # both scans decrypted and sent the ID number
    assert _officer_reads(who["account_id"]) == 2, "the losing scan's read of the ID number is not audited"


def test_a_scan_withdrawn_by_a_closure_meanwhile_still_audits_its_read(
    app,
    client,
    hall_officer,  # noqa: F811
    monkeypatch,
):
    who = verified_as(app, holder_of_valid_id())
    card = of_type(wallet(client, who), ID_CARD)
    token = present(client, who, card["id"]).get_json()["token"]
    asked, others = _spy_library(monkeypatch, app, lambda http: close(http, who))
    answer = verify(client, hall_officer, token)
    assert answer.status_code == 404
    assert others[0].result().status_code == 200
    assert len(asked) == 1
    assert _officer_reads(who["account_id"]) == 1, "the withdrawn scan's read of the ID number is not audited"
