"""The verified person behind a wallet: their name and ID number decrypted to ask the
certificate library, each read audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE
from domain.identity.models import VerifiedIdentity
from domain.shared_data.deps import GovDataDeps
from domain.shared_data.errors import VerifiedIdentityRequired


@dataclass(frozen=True)
class Holder:
    account_id: str
    name: str
    id_number: str


def holder(
    session: Session,
    deps: GovDataDeps,
    account_id: str,
    *,
    why: str,
    request_id: str | None = None,
    actor_type: str = "citizen",
    actor_id: str | None = None,
) -> Holder:
    """The verified person behind an account (decrypted, audited); 403 when not verified. The
    audit names who reads (`actor_type`, `actor_id`: the citizen themselves unless given)."""
    row = session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.account_id == account_id))
    if row is None:
        raise VerifiedIdentityRequired()
    audit.record(
        session,
        actor_type=actor_type,
        actor_id=actor_id or account_id,
        action="pii.read",
        target_type="account",
        target_id=account_id,
        request_id=request_id,
        details={"purpose": why},
    )
    return Holder(
        account_id,
        deps.encryptor.decrypt(row.name_enc, purpose=NAME_PURPOSE),
        deps.encryptor.decrypt(row.id_number_enc, purpose=ID_PURPOSE),
    )
