"""Tokens of third-party apps: code redemption, issue, refresh rotation, revocation, introspection.

Access tokens are ES256 JWTs in the RFC 9068 profile minted by the one token service (header
`typ: at+jwt`; claims iss, sub, aud, exp, iat, jti, client_id, scope). A citizen token's `sid`
is its token family: the tokens descended from one authorization code. Revoking a family puts
its id on the same revocation list citizen sessions use, so every resource refuses it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.crypto import random_token, token_hash
from core.db import lock_one, new_id, take_write_lock
from core.tokens import TokenService
from domain.accounts.models import Account
from domain.auth.revocation import ACCESS_TOKEN_REVOKED, RevocationList
from domain.oauth import scopes as scope_catalog
from domain.oauth.models import (
    APPROVED,
    OAuthClient,
    OAuthCode,
    OAuthGrant,
    OAuthRefreshToken,
    OAuthTokenFamily,
)

TYP_CITIZEN = "oauth"  # acting for a citizen
TYP_CLIENT = "oauth_client"  # the app itself (client_credentials)
AT_JWT_HEADER = {"typ": "at+jwt"}


@dataclass(frozen=True)
class OAuthPolicy:
    audience: str
    access_ttl: int = 600
    refresh_ttl: int = 30 * 86400
    code_ttl: int = 60


def issue_code(
    session: Session,
    *,
    policy: OAuthPolicy,
    grant: OAuthGrant,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    code_challenge_method: str,
) -> str:
    raw = random_token(32)
    now = clock.now()
    session.add(
        OAuthCode(
            code_hash=token_hash(raw),
            grant_id=grant.id,
            client_id=grant.client_id,
            account_id=grant.account_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            created_at=now,
            expires_at=now + timedelta(seconds=policy.code_ttl),
        )  # fmt: skip
    )
    session.commit()
    return raw


def redeem_code(
    session: Session, *, revocations: RevocationList, code: str, client_id: str
) -> OAuthCode | None:
    """Claim a code once, under its grant's lock (`lock_grant`, taken first, as withdrawal and
    refresh take it): concurrent redemptions queue on it and exactly one claims the code; its
    token family is created in the same transaction. The claim is left uncommitted: the tokens
    issued with it commit it (a refusal of the exchange commits it too, `burn_code`), so a
    server failure in between leaves the code usable for the client's retry instead of burning
    it. A second redemption of a used code revokes every token issued from it (RFC 9700 §4.2.1 /
    RFC 6749 §4.1.2) and gets nothing (committed). The caller loads the signing key before: on
    SQLite the grant's lock is the database's write lock."""
    now = clock.now()
    digest = token_hash(code)
    row = session.scalar(select(OAuthCode).where(OAuthCode.code_hash == digest))
    if row is None or row.client_id != client_id:
        return None
    if row.used_at is None and row.expires_at > now and lock_grant(session, row.grant_id) is not None:
        family_id = new_id()
        claimed = session.scalars(
            update(OAuthCode)
            .where(OAuthCode.id == row.id, OAuthCode.used_at.is_(None), OAuthCode.expires_at > now)
            .values(used_at=now, family_id=family_id)
            .returning(OAuthCode),  # the claimed row in the same round trip
            execution_options={"synchronize_session": False, "populate_existing": True},
        ).first()
        if claimed is not None:
            session.add(
                OAuthTokenFamily(id=family_id, grant_id=claimed.grant_id, code_id=claimed.id, created_at=now)
            )
            return claimed
        session.rollback()  # a concurrent redemption claimed it first: this one is the replay
        row = session.scalar(select(OAuthCode).where(OAuthCode.id == row.id))
    if row is not None and row.used_at is not None and row.family_id:
        row.replayed_at = now
        revoke_families(session, revocations, [row.family_id], reason="code_replay")
    session.commit()
    return None


def burn_code(session: Session) -> None:
    """An exchange refused after its code was claimed (a wrong PKCE verifier or redirect URI, an
    account no longer active, a grant that no longer covers it): the claim is committed, so the
    code cannot be tried again."""
    session.commit()


def lock_grant(session: Session, grant_id: str) -> OAuthGrant | None:
    """The grant's row read afresh and locked until the transaction ends. A withdrawal, a new
    consent and every token issue take this lock first, so they happen one after the other:
    a token issued before a withdrawal is in a family the withdrawal then ends, and an issue
    after it sees the grant withdrawn. (SQLite: its one write lock, taken by a no-op update.)"""
    return lock_one(session, OAuthGrant, OAuthGrant.id == grant_id)


def lock_client_grants(session: Session, client_id: str) -> None:
    """Every grant of the client locked (`lock_grant`, in id order), before its suspension lists
    their token families: a token issue under way finishes first (its family is then listed and
    ended), and one after it finds the client suspended."""
    _lock_grants(session, OAuthGrant.client_id == client_id)


def _lock_grants(session: Session, *where: Any) -> list[OAuthGrant]:
    """The grants matching `where`, read afresh and locked in id order (as `lock_grant` locks
    one; the same order everywhere, so two such locks never wait on each other crosswise)."""
    take_write_lock(session, OAuthGrant.__table__, *where)
    return list(
        session.scalars(
            select(OAuthGrant)
            .where(*where)
            .order_by(OAuthGrant.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def grant_live(grant: OAuthGrant | None) -> bool:
    return grant is not None and grant.revoked_at is None and grant.expires_at > clock.now()


def code_scope(code: OAuthCode, grant: OAuthGrant) -> str | None:
    """What a redeemed code still gives: its scope within what the grant holds now (the citizen
    may have narrowed the consent since the code was issued). None if nothing is left."""
    held = set(scope_catalog.parse(grant.scopes))
    kept = [s for s in scope_catalog.parse(code.scope) if s in held]
    return scope_catalog.join(kept) if kept else None


def lock_live_grant(
    session: Session, *, tokens: TokenService, revocations: RevocationList, grant_id: str, family_id: str
) -> OAuthGrant | None:
    """Before issuing tokens in `family_id`: the grant, locked (`lock_grant`), if it is still
    live; the caller issues and commits under that lock. None if the grant was withdrawn or has
    expired (the family is then ended too, committed, as the withdrawal would have ended it),
    its client suspended, or the family itself ended meanwhile (a narrowed consent)."""
    # The signing key is loaded (and the first one made, in its own session) before the lock:
    # on SQLite that session's write would otherwise wait for this one's write lock.
    tokens.keyring.signing_key()
    grant = lock_grant(session, grant_id)
    client = session.get(OAuthClient, grant.client_id, populate_existing=True) if grant is not None else None
    if grant_live(grant) and client is not None and client.status == APPROVED:
        if _family_open(session, revocations, family_id):
            return grant
        session.rollback()  # ended meanwhile (a narrowed consent, a reused refresh token)
        return None
    if client is not None and client.status != APPROVED:  # suspended while this request ran
        reason = "client_suspended"
    else:
        reason = (grant.revoke_reason if grant is not None else None) or "grant_ended"
    revoke_families(session, revocations, [family_id], reason=reason)
    session.commit()
    return None


def _family_open(session: Session, revocations: RevocationList, family_id: str) -> bool:
    fam = session.get(OAuthTokenFamily, family_id, populate_existing=True)  # not a stale copy
    return fam is not None and fam.revoked_at is None and not revocations.is_revoked(family_id)


def issue_for_citizen(
    session: Session,
    *,
    tokens: TokenService,
    policy: OAuthPolicy,
    revocations: RevocationList,
    grant: OAuthGrant,
    family_id: str,
    scope: str,
    account: Account,
    with_refresh: bool,
    refresh_scope: str | None = None,
) -> dict[str, Any]:
    """An access token for `scope` (and a new refresh token, for `refresh_scope` if given, else
    for `scope`) in family `family_id`. Commits."""
    now = clock.now()
    body = _bearer(tokens, policy, subject=account.id, scope=scope, claims={
        "typ": TYP_CITIZEN, "client_id": grant.client_id, "scope": scope, "sid": family_id, "gid": grant.id,
        "idl": account.identity_level,
    })  # fmt: skip
    if with_refresh:
        raw = "ort_" + random_token(32)
        expires = min(now + timedelta(seconds=policy.refresh_ttl), grant.expires_at)
        session.add(
            OAuthRefreshToken(
                family_id=family_id,
                token_hash=token_hash(raw),
                scope=refresh_scope or scope,
                created_at=now,
                expires_at=expires,
            )
        )
        body["refresh_token"] = raw
    session.commit()
    # A replay may have revoked the family while the token was made: the refresh token then
    # belongs to a revoked family (refused at use) and the revocation list refuses the access token.
    return body


def issue_for_client(
    tokens: TokenService, policy: OAuthPolicy, client: OAuthClient, scope: str
) -> dict[str, Any]:
    claims = {"typ": TYP_CLIENT, "client_id": client.id, "scope": scope}
    return _bearer(tokens, policy, subject=client.id, scope=scope, claims=claims)


def _bearer(
    tokens: TokenService, policy: OAuthPolicy, *, subject: str, scope: str, claims: dict[str, Any]
) -> dict[str, Any]:
    """The token endpoint's answer around one RFC 9068 access token."""
    access = tokens.mint(
        audience=policy.audience, subject=subject, ttl=policy.access_ttl, headers=AT_JWT_HEADER, claims=claims
    )
    return {"token_type": "Bearer", "expires_in": policy.access_ttl, "scope": scope, "access_token": access}


@dataclass
class RefreshClaim:
    row: OAuthRefreshToken
    grant: OAuthGrant
    family_id: str


def claim_refresh(
    session: Session, *, revocations: RevocationList, refresh_token: str, client_id: str
) -> RefreshClaim | None:
    """Rotate a refresh token once. A token presented again (reuse: stolen or replayed) revokes
    the whole grant, every family of it (committed). The rotation itself is left uncommitted,
    under the grant's lock (taken before it, as withdrawal takes it before ending the families):
    the tokens issued with it commit it, and a request that fails before that leaves the refresh
    token usable, so the client's retry is not taken for a reuse that ends the grant."""
    now = clock.now()
    found = find_refresh(session, refresh_token)
    if found is None or found[1].client_id != client_id:
        return None
    row, grant = found
    if row.rotated_at is not None:
        revoke_grant(session, revocations, grant, reason="refresh_reuse")
        session.commit()
        return None
    if row.expires_at <= now or grant.revoked_at is not None or grant.expires_at <= now:
        return None
    if not _family_open(session, revocations, row.family_id):
        return None
    lock_grant(session, grant.id)
    claimed = session.execute(
        update(OAuthRefreshToken)
        .where(OAuthRefreshToken.id == row.id, OAuthRefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
    ).rowcount
    if claimed != 1:  # a concurrent use won: this one is the reuse
        session.rollback()
        grant = session.get(OAuthGrant, grant.id)
        assert grant is not None
        revoke_grant(session, revocations, grant, reason="refresh_reuse")
        session.commit()
        return None
    return RefreshClaim(row, grant, row.family_id)


def refresh_scope(asked: str | None, claim: RefreshClaim, account: Account) -> str | None:
    """The scope of the new access token: what was asked (or all of it), within what the grant
    still holds and the account's current level allows. None if the ask exceeds the grant.
    It narrows the access token only: the new refresh token keeps `kept_scope`."""
    held = set(scope_catalog.parse(kept_scope(claim)))
    wanted = set(scope_catalog.parse(asked)) if asked else held
    if not wanted <= held:
        return None
    allowed = {s for s in wanted if scope_catalog.level_allows(s, account.identity_level)}
    return scope_catalog.join(allowed) if allowed else None


def kept_scope(claim: RefreshClaim) -> str:
    """The scope of the refresh token issued in the rotation: the presented one's (RFC 6749 §6:
    identical, whatever narrower scope the access token was asked for), within what the grant
    still holds. A scope the account's level no longer allows stays on it (the grant still holds
    it), so it comes back in the access token once the level does."""
    held = set(scope_catalog.parse(claim.grant.scopes))
    return scope_catalog.join([s for s in scope_catalog.parse(claim.row.scope) if s in held])


def revoke_access_token(
    session: Session, revocations: RevocationList, *, jti: str, expires_at: float, client_id: str,
    request_id: str | None = None,
) -> None:  # fmt: skip
    """End one access token at its app's request (RFC 7009): refused from now on, and recorded
    in the audit trail (ACCESS_TOKEN_REVOKED, with its expiry), from which the revocation list is
    rebuilt should Redis lose it. Commits."""
    audit.record(
        session, actor_type="client", actor_id=client_id, action=ACCESS_TOKEN_REVOKED,
        target_type="access_token", target_id=jti, request_id=request_id, details={"exp": int(expires_at)},
    )  # fmt: skip
    session.commit()
    revocations.revoke_token(jti, expires_at=expires_at)


def revoke_families(
    session: Session, revocations: RevocationList, family_ids: list[str], *, reason: str
) -> None:
    """Mark families revoked (in the caller's transaction) and refuse their access tokens now."""
    if not family_ids:
        return
    _mark_families_ended(session, family_ids, reason=reason)
    for fid in family_ids:
        revocations.revoke(fid)


def _mark_families_ended(session: Session, family_ids: list[str], *, reason: str) -> None:
    session.execute(
        update(OAuthTokenFamily)
        .where(OAuthTokenFamily.id.in_(family_ids), OAuthTokenFamily.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoke_reason=reason[:32])
    )


def end_account_tokens(session: Session, account_id: str, *, reason: str, end_grants: bool) -> list[str]:
    """End every open token family of the account's grants, and with `end_grants` the grants
    themselves (revoked with `reason`), in the caller's transaction; the family ids are returned
    for the caller to put on the revocation list once that transaction commits
    (`domain.auth.sessions.revoke_all`, which ends the account's own sessions the same way).

    Each unrevoked grant of the account is locked first (`lock_grant`; in id order, as a client's
    suspension locks them, so the two never wait on each other crosswise): a token issue under
    way commits its family before this reads the families, and one after it re-reads the
    account (no longer active: refused) or finds the family or grant ended."""
    grants = _lock_grants(session, OAuthGrant.account_id == account_id, OAuthGrant.revoked_at.is_(None))
    family_ids = list(
        session.scalars(
            select(OAuthTokenFamily.id)
            .join(OAuthGrant, OAuthGrant.id == OAuthTokenFamily.grant_id)
            .where(OAuthGrant.account_id == account_id, OAuthTokenFamily.revoked_at.is_(None))
        )
    )
    if family_ids:
        _mark_families_ended(session, family_ids, reason=reason)
    if end_grants:
        now = clock.now()
        for grant in grants:
            grant.revoked_at, grant.revoke_reason = now, reason[:32]
    return family_ids


def revoke_grant(session: Session, revocations: RevocationList, grant: OAuthGrant, *, reason: str) -> None:
    """End a grant and every token of it (in the caller's transaction, which holds the grant's
    lock from here: a token issue waits for it and then finds the grant withdrawn)."""
    lock_grant(session, grant.id)  # also reads the grant afresh
    if grant.revoked_at is None:
        grant.revoked_at = clock.now()
        grant.revoke_reason = reason
    end_tokens_of(session, revocations, grant, reason=reason)


def end_tokens_of(session: Session, revocations: RevocationList, grant: OAuthGrant, *, reason: str) -> None:
    """End every token issued under a grant so far; the grant itself stays (in the caller's
    transaction, which must hold the grant's lock, `lock_grant`: tokens are issued only under
    it, so none can be issued in a family this does not see)."""
    ids = list(
        session.scalars(
            select(OAuthTokenFamily.id).where(
                OAuthTokenFamily.grant_id == grant.id, OAuthTokenFamily.revoked_at.is_(None)
            )
        )
    )
    revoke_families(session, revocations, ids, reason=reason)


def find_refresh(session: Session, raw: str) -> tuple[OAuthRefreshToken, OAuthGrant] | None:
    """A refresh token's row and the grant it belongs to, whatever their state."""
    row = session.scalar(select(OAuthRefreshToken).where(OAuthRefreshToken.token_hash == token_hash(raw)))
    if row is None:
        return None
    fam = session.get(OAuthTokenFamily, row.family_id)
    grant = session.get(OAuthGrant, fam.grant_id) if fam else None
    return (row, grant) if grant is not None else None


def refresh_active(
    session: Session, revocations: RevocationList, row: OAuthRefreshToken, grant: OAuthGrant
) -> bool:
    now = clock.now()
    return (
        row.rotated_at is None
        and row.expires_at > now
        and grant.revoked_at is None
        and grant.expires_at > now
        and _family_open(session, revocations, row.family_id)
    )


def grant_family_ids(session: Session, client_id: str) -> list[str]:
    """Every open family of a client's grants (to refuse at once when the client is suspended)."""
    stmt = (
        select(OAuthTokenFamily.id)
        .join(OAuthGrant, OAuthGrant.id == OAuthTokenFamily.grant_id)
        .where(OAuthGrant.client_id == client_id, OAuthTokenFamily.revoked_at.is_(None))
    )
    return list(session.scalars(stmt))
