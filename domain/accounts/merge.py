"""Folding one account into another when both turn out to be the same person.

Two routes lead here: a phone WeChat vouches for that already belongs to another account
(domain/accounts/service.bind_phone), and a live face check of an identity another account
holds (domain/identity/merge.py). Both use this one routine so that everything the person
owns follows them, whichever route found them.

What moves is declared by the models: every mapped class with `follows_person = True` and an
`account_id` column (channel identities, verification history, consents, applications with
their files and notices, and whatever later features mark). A model whose rows may clash with
the target's under a unique rule declares `settle_merge`, called before anything moves.
Sessions stay on the closed account; the caller ends them (domain.auth.sessions.revoke_all).
So do its grants to third-party apps (OAuth): the surviving account never consented to those apps, and both
accounts may hold a live grant to the same one; revoke_all ends them with every token issued
under them (docs/oauth.md).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import Base
from domain.accounts import profile_cache
from domain.accounts.models import ACTIVE, DELETED, Account, ChannelIdentity


def _slots(session: Session, account_id: str) -> set[tuple[str, str]]:
    rows = session.execute(
        select(ChannelIdentity.kind, ChannelIdentity.issuer).where(ChannelIdentity.account_id == account_id)
    ).all()
    return {(row.kind, row.issuer) for row in rows}


def can_merge(session: Session, *, source: Account, target: Account) -> bool:
    """Whether `source` may be folded into `target`: the target is usable and no channel slot
    clashes (two phones, or two WeChat users of one mini-program, under one account would be
    ambiguous)."""
    if target.status != ACTIVE or source.id == target.id:
        return False
    return not (_slots(session, source.id) & _slots(session, target.id))


def owned_models() -> list[type]:
    """Mapped classes whose rows follow the person on a merge."""
    found = [m.class_ for m in Base.registry.mappers if getattr(m.class_, "follows_person", False)]
    return sorted(found, key=lambda cls: cls.__name__)


def fold_into(session: Session, *, source: Account, target: Account, actor_id: str, reason: str) -> None:
    """Move everything `source` owns to `target` and close `source` (status deleted,
    merged_into = target). Audited with the citizen who triggered it. Flushed, not committed;
    the caller ends the source's sessions and app grants (domain.auth.sessions.revoke_all).

    Both accounts are locked first, FOR UPDATE in id order, whichever route merges (a phone
    bound, a face check): a booking, a move or a release on either waits for the merge, so the
    duplicates `settle_merge` finds are still all there is when the rows move (a booking made
    meanwhile broke the one-per-day rule: a 500 for the citizen binding their phone)."""
    both = select(Account.id).where(Account.id.in_((source.id, target.id)))
    session.execute(both.order_by(Account.id).with_for_update())
    now = clock.now()
    owned = owned_models()
    for model in owned:
        # A model whose rows could clash with the target's under a unique rule (one booking per
        # item and day, one inbox entry per event) settles that first, as its rule says.
        settle = getattr(model, "settle_merge", None)
        if settle is not None:
            settle(session, source_id=source.id, target_id=target.id, now=now)
    for model in owned:
        app_attr = getattr(model, "shown_in_application_view", None)
        if app_attr:  # cached application views name their owner: drop them after the commit
            moved = session.scalars(select(getattr(model, app_attr)).where(model.account_id == source.id))
            profile_cache.mark_application_changed(session, *(m for m in moved if m))
        session.execute(
            update(model).where(model.account_id == source.id).values(account_id=target.id)
            .execution_options(synchronize_session="fetch")
        )  # fmt: skip
    source.status = DELETED
    source.merged_into_id = target.id
    source.updated_at = now
    target.updated_at = now  # marks it changed: its cached views drop after the commit
    audit.record(
        session, actor_type="citizen", actor_id=actor_id, action="account.merged",
        target_type="account", target_id=source.id,
        details={"reason": reason, "into": target.id},
    )  # fmt: skip
    session.flush()
