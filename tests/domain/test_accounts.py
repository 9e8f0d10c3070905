"""Accounts: phone normalisation, encrypted storage, lookup, locking."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from domain.accounts import service as accounts
from domain.accounts.errors import InvalidPhone
from domain.accounts.models import ChannelIdentity
from domain.accounts.phone import normalize_phone
from domain.auth import sessions
from tests.conftest import make_citizen


@pytest.mark.parametrize("raw", ["13812345678", "+86 138 1234 5678", "0086-13812345678", "8613812345678"])
def test_phone_normalisation(raw):
    assert normalize_phone(raw) == "13812345678"


@pytest.mark.parametrize(
    "raw",
    [
        "12812345678",
        "1381234567",
        "138123456789",
        "+85213812345678",
        "abc",
        "",
        "13８00138000",
        "1380013800\u0660",  # Arabic-Indic zero
    ],
)
def test_invalid_phones(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_phone_is_encrypted_at_rest_and_found_by_keyed_hash(app, db_session, services):
    account, created = accounts.login_phone(
        db_session, encryptor=services.encryptor, hasher=services.hasher, phone="13812345678"
    )
    db_session.commit()
    assert created
    row = db_session.scalar(select(ChannelIdentity).where(ChannelIdentity.account_id == account.id))
    assert "13812345678" not in (row.lookup + row.value_enc)
    assert row.value_masked == "138****5678"
    again, created_again = accounts.login_phone(
        db_session, encryptor=services.encryptor, hasher=services.hasher, phone="13812345678"
    )
    assert again.id == account.id and not created_again


def test_locking_an_account_ends_its_sessions_and_blocks_refresh(app, client, db_session, services):
    who = make_citizen(app)
    accounts.set_status(
        db_session, account_id=who["account_id"], status="locked", actor_id="op-1", reason="fraud report"
    )
    sessions.revoke_all(
        db_session, revocations=services.revocations, account_id=who["account_id"], reason="account_locked"
    )
    db_session.commit()
    assert client.get("/v1/me", headers=who["headers"]).status_code == 401
    r = client.post("/v1/auth/refresh", json={"refresh_token": who["refresh_token"]})
    assert r.status_code == 401


def test_locked_account_cannot_start_a_session(app, db_session, services):
    who = make_citizen(app, phone="13512345678")
    accounts.set_status(db_session, account_id=who["account_id"], status="locked", actor_id="op", reason="x")
    db_session.commit()
    from domain.accounts.errors import AccountLocked

    with pytest.raises(AccountLocked):
        make_citizen(app, phone="13512345678")
