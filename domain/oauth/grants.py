"""The citizen's side: consent to a client, the list of grants, revoking one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.db import is_id, take_write_lock
from domain.accounts.models import Account
from domain.accounts.service import ensure_usable
from domain.auth.revocation import RevocationList
from domain.oauth import clients
from domain.oauth import scopes as scope_catalog
from domain.oauth import tokens as oauth_tokens
from domain.oauth.errors import ClientNotFound, ConsentLevelTooLow, GrantNotFound, NothingConsented
from domain.oauth.models import OAuthClient, OAuthGrant

CONSENT_VERSION = "2026-12"
DURATIONS_DAYS = (30, 90, 180, 365)
DEFAULT_DAYS = 90


@dataclass
class ConsentRequest:
    """What the consent page shows: the asked scopes the citizen may grant, split by sensitivity."""

    client: OAuthClient
    ordinary: list[str]
    sensitive: list[str]
    too_low: list[str]  # sensitive scopes the account's level does not allow yet


def prepare(client: OAuthClient, asked: list[str], account: Account) -> ConsentRequest:
    names = [s for s in asked if s in scope_catalog.SCOPES and scope_catalog.SCOPES[s].citizen]
    sensitive = scope_catalog.sensitive(names)
    return ConsentRequest(
        client=client,
        ordinary=[s for s in names if s not in sensitive],
        sensitive=sensitive,
        too_low=[s for s in sensitive if not scope_catalog.level_allows(s, account.identity_level)],
    )


def consent(
    session: Session,
    *,
    account: Account,
    client: OAuthClient,
    asked: list[str],
    sensitive_accepted: list[str],
    days: int,
    revocations: RevocationList | None = None,
) -> OAuthGrant:
    """Record the citizen's consent: the asked ordinary scopes plus the sensitive ones they ticked.
    One grant per citizen and client; a new consent replaces its scopes and duration. When it
    takes a scope away, the tokens issued under the wider consent end at once (with
    `revocations`; their refresh tokens too), not when they expire. Flushed, not committed."""
    ensure_usable(account)
    if not clients.usable(client):
        raise ClientNotFound()
    req = prepare(client, asked, account)
    chosen = list(req.ordinary)
    for name in req.sensitive:
        if name in sensitive_accepted:
            if name in req.too_low:
                scope = scope_catalog.SCOPES[name]
                raise ConsentLevelTooLow(scope=name, scope_title=scope.title_zh, min_level=scope.min_level)
            chosen.append(name)
    if not chosen:
        raise NothingConsented()
    now = clock.now()
    days = days if days in DURATIONS_DAYS else DEFAULT_DAYS
    for attempt in (1, 2):
        grant = _unrevoked(session, account.id, client.id)
        if grant is not None and grant.expires_at <= now:
            # An expired grant is closed rather than revived: its old refresh tokens stay dead.
            grant.revoked_at, grant.revoke_reason = now, "expired"
            session.flush()
            grant = None
        new = grant is None
        if grant is None:
            grant = OAuthGrant(account_id=account.id, client_id=client.id, granted_at=now)
        elif revocations is not None and set(scope_catalog.parse(grant.scopes)) - set(chosen):
            oauth_tokens.end_tokens_of(session, revocations, grant, reason="consent_narrowed")
        grant.scopes = scope_catalog.join(chosen)
        grant.consent_version = CONSENT_VERSION
        grant.granted_at = now
        grant.expires_at = now + timedelta(days=days)
        try:
            # A new grant joins the session inside the savepoint: if its insert fails, rolling
            # the savepoint back takes it out again and leaves the rest of the transaction as it
            # was (added before, its failed flush would spoil the whole transaction).
            with session.begin_nested():
                if new:
                    session.add(grant)
                session.flush()
        except IntegrityError:  # the same citizen consented to the same app a moment ago
            if attempt == 2 or not new:
                raise
            continue  # the next attempt finds that consent's grant and updates it
        return grant
    raise AssertionError("unreachable")


def _unrevoked(session: Session, account_id: str, client_id: str) -> OAuthGrant | None:
    """The live grant, read afresh and locked like `tokens.lock_grant` does: a consent that
    narrows it and a token issue under it happen one after the other."""
    where = (
        OAuthGrant.account_id == account_id,
        OAuthGrant.client_id == client_id,
        OAuthGrant.revoked_at.is_(None),
    )
    take_write_lock(session, OAuthGrant.__table__, *where)
    return session.scalar(
        select(OAuthGrant).where(*where).with_for_update().execution_options(populate_existing=True)
    )


def list_for(session: Session, account_id: str) -> list[tuple[OAuthGrant, OAuthClient]]:
    now = clock.now()
    rows = session.execute(
        select(OAuthGrant, OAuthClient)
        .join(OAuthClient, OAuthClient.id == OAuthGrant.client_id)
        .where(
            OAuthGrant.account_id == account_id, OAuthGrant.revoked_at.is_(None), OAuthGrant.expires_at > now
        )
        .order_by(OAuthGrant.granted_at.desc())
    )
    return [(g, c) for g, c in rows]


def revoke(session: Session, *, revocations: RevocationList, account_id: str, grant_id: str) -> None:
    """The citizen withdraws a grant: every token of it stops working at once. Commits.

    The grant's row is locked first (`tokens.lock_grant`), as every token issue locks it: an
    exchange or refresh that got there first has committed its tokens in a family ended here,
    one that comes after finds the grant withdrawn and is refused (invalid_grant)."""
    grant = oauth_tokens.lock_grant(session, grant_id) if is_id(grant_id) else None
    if grant is None or grant.account_id != account_id or grant.revoked_at is not None:
        raise GrantNotFound()
    oauth_tokens.revoke_grant(session, revocations, grant, reason="citizen")
    session.commit()
