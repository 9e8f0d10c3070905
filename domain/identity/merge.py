"""One ID number, one account: when a second account proves an identity another account holds.

Rule (docs/identity.md): the account that proved the identity first keeps it. A second
account that proves the same identity is merged into the first when
- the first account is usable (not locked or closed), and
- the second holds no verified identity of its own (always true here: an account cannot prove
  a second person), and
- none of its channel identities clashes with the first's: the first has no phone when the
  second has one, and no WeChat identity of the same mini-program or open platform when the
  second has one (two phones or two WeChat users under one account would be ambiguous).
Then the second account's channel identities move to the first, the second is closed
(status deleted, merged_into = first) and its sessions end. Otherwise the verification is
refused with identity.bound_to_other_account and support resolves it.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from domain.accounts.models import ACTIVE, DELETED, Account, ChannelIdentity
from domain.auth.revocation import RevocationList
from domain.auth.sessions import revoke_all
from domain.identity.models import ConsentRecord, IdentityVerification


def _slots(session: Session, account_id: str) -> set[tuple[str, str]]:
    rows = session.execute(
        select(ChannelIdentity.kind, ChannelIdentity.issuer).where(ChannelIdentity.account_id == account_id)
    ).all()
    return {(row.kind, row.issuer) for row in rows}


def can_merge(session: Session, *, source: Account, target: Account) -> bool:
    """Whether `source` may be folded into `target` under the rule above."""
    if target.status != ACTIVE or source.id == target.id:
        return False
    return not (_slots(session, source.id) & _slots(session, target.id))


def merge(session: Session, *, revocations: RevocationList, source: Account, target: Account) -> None:
    """Move `source`'s channel identities to `target`, close `source`, end its sessions. Not committed."""
    now = clock.now()
    for ident in session.scalars(select(ChannelIdentity).where(ChannelIdentity.account_id == source.id)):
        ident.account_id = target.id
    # The person's verification history and consents follow them.
    for model in (IdentityVerification, ConsentRecord):
        session.execute(
            update(model).where(model.account_id == source.id).values(account_id=target.id)
            .execution_options(synchronize_session="fetch")
        )  # fmt: skip
    source.status = DELETED
    source.merged_into_id = target.id
    source.updated_at = now
    revoke_all(session, revocations=revocations, account_id=source.id, reason="account_merged")
    audit.record(
        session, actor_type="citizen", actor_id=target.id, action="account.merged",
        target_type="account", target_id=source.id, details={"reason": "same verified identity"},
    )  # fmt: skip
    session.flush()
