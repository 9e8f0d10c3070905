"""What the owner sees of their identity (GET /v1/identity): level, method, times, masked values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from domain.accounts.errors import AccountNotFound
from domain.accounts.models import DELETED, Account
from domain.accounts.profile_cache import ProfileCache
from domain.identity.levels import methods_for
from domain.identity.models import VerifiedIdentity

# Built once: this runs on every GET /v1/identity (see domain/accounts/service.py on why).
_QUERY = (
    select(
        Account.status, Account.identity_level, Account.live_checked_at,
        VerifiedIdentity.method, VerifiedIdentity.verified_at, VerifiedIdentity.updated_at,
        VerifiedIdentity.name_masked, VerifiedIdentity.id_number_masked,
    )
    .outerjoin(VerifiedIdentity, VerifiedIdentity.account_id == Account.id)
    .where(Account.id == bindparam("account_id"))
)  # fmt: skip


_DATES = ("verified_at", "updated_at", "live_checked_at")


def identity_view(
    session: Session, account_id: str, *, offered: Sequence[str], cache: ProfileCache | None = None
) -> dict[str, Any]:
    """Level, latest method and times, masked name and ID number, and how to go higher.

    One query, or none when `cache` holds it: the cache is dropped after any committed change to
    the account or its verified identity (domain/accounts/profile_cache.py). Only masked values
    are cached."""
    data = cache.get(account_id, kind="identity", dates=_DATES) if cache is not None else None
    if data is None:
        row = session.connection().execute(_QUERY, {"account_id": account_id}).first()
        if row is None:
            raise AccountNotFound()
        verified_at: datetime | None = row.verified_at
        data = {
            "status": row.status,
            "level": row.identity_level,
            "method": row.method,
            "verified_at": verified_at,
            "updated_at": row.updated_at,
            "live_checked_at": row.live_checked_at,
            "name": row.name_masked,
            "id_number": row.id_number_masked,
        }
        if cache is not None:
            cache.put(account_id, data, kind="identity", dates=_DATES)
    if data.pop("status") == DELETED:
        raise AccountNotFound()
    data["upgrade_methods"] = {"L2": methods_for("L2", offered), "L3": methods_for("L3", offered)}
    return data
