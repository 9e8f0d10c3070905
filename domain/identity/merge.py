"""One ID number, one account: when a second account proves an identity another account holds.

Rule (docs/identity.md): the account that proved the identity first keeps it. A second
account is merged into it only on a **live** proof (a face check that matched the identity's
photo): a name and ID number alone are not secret, so an ID check of an identity another
account holds is refused with identity.bound_to_other_account and never moves anything.
A live proof merges when
- the first account is usable (not locked or closed), and
- the second holds no verified identity of its own (always true here: an account cannot prove
  a second person), and
- none of its channel identities clashes with the first's (domain/accounts/merge.can_merge).
Then everything the second account owns moves to the first, the second is closed
(status deleted, merged_into = first) and its sessions end. Otherwise the verification is
refused with identity.bound_to_other_account and support resolves it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from domain.accounts import merge as accounts_merge
from domain.accounts.models import Account
from domain.auth.revocation import RevocationList
from domain.auth.sessions import revoke_all


def can_merge(session: Session, *, source: Account, target: Account, live: bool) -> bool:
    """Whether `source`, having proved the identity `target` holds, may be folded into it."""
    return live and accounts_merge.can_merge(session, source=source, target=target)


def merge(session: Session, *, revocations: RevocationList, source: Account, target: Account) -> None:
    """Fold `source` into `target` and end `source`'s sessions. Not committed."""
    accounts_merge.fold_into(
        session, source=source, target=target, actor_id=source.id, reason="same verified identity"
    )
    revoke_all(session, revocations=revocations, account_id=source.id, reason="account_merged")
