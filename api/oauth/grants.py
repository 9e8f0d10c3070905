"""Authlib grant classes bound to yiwang's domain services (no business rule lives here)."""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    grants,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import select

from api.deps import services
from api.oauth.adapters import Code
from core.db import db
from domain.accounts.models import Account
from domain.oauth import scopes as scope_catalog
from domain.oauth import tokens as oauth_tokens
from domain.oauth.models import OAuthGrant

AUTH_METHODS = ["client_secret_basic", "private_key_jwt", "none"]


def oauth_policy() -> oauth_tokens.OAuthPolicy:
    return services().oauth_policy


class S256Required(CodeChallenge):
    """PKCE for every client, S256 only: a missing challenge, `plain`, a missing method (which
    would mean plain) and a verifier without a challenge are all refused (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256."
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class AuthorizationCode(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> tuple[int, str, list]:
        """`grant_user` is (account, grant) once the citizen consented; None when they refused."""
        if not grant_user:
            return super().create_authorization_response(redirect_uri, None)
        account, grant = grant_user
        self.request.user = account
        data = self.request.payload.data
        code = oauth_tokens.issue_code(
            db.session(), policy=oauth_policy(), grant=grant, redirect_uri=redirect_uri, scope=grant.scopes,
            code_challenge=data["code_challenge"], code_challenge_method=data["code_challenge_method"],
        )  # fmt: skip
        params = [("code", code), ("state", self.request.payload.state)]
        return 302, "", [("Location", add_params_to_uri(redirect_uri, params))]

    def validate_token_request(self) -> None:
        try:
            super().validate_token_request()
        except OAuth2Error:
            oauth_tokens.burn_code(db.session())  # a claimed code presented wrongly is used up
            raise

    def create_token_response(self) -> tuple[int, dict, list]:
        try:
            return super().create_token_response()
        except OAuth2Error:
            oauth_tokens.burn_code(db.session())
            raise

    def query_authorization_code(self, code: str, client: Any) -> Code | None:
        # The signing key first (made in a session of its own when due): the claim holds the
        # grant's lock until the tokens are committed, and on SQLite that is the write lock.
        services().tokens.keyring.signing_key()
        row = oauth_tokens.redeem_code(
            db.session(), revocations=services().revocations, code=code, client_id=client.get_client_id()
        )
        return Code(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing to do: redeem_code marked it used in the step that claimed it, committed with
        the tokens."""

    def authenticate_user(self, authorization_code: Code) -> Account | None:
        row = authorization_code.row
        found = (
            db.session()
            .execute(  # the account and its grant in one round trip
                select(Account, OAuthGrant)
                .join(OAuthGrant, OAuthGrant.account_id == Account.id)
                .where(Account.id == row.account_id, OAuthGrant.id == row.grant_id)
            )
            .first()
        )
        if found is None:
            return None
        account, authorization_code.grant = found
        return account if account.status == "active" else None

    def generate_token(self, user: Any = None, scope: Any = None, grant_type: Any = None,
                       expires_in: Any = None, include_refresh_token: bool = True) -> dict:  # fmt: skip
        """Under the grant's lock, held until the tokens are committed: a withdrawal either
        comes first (the grant is found withdrawn here) or ends the family issued here."""
        row = self.request.authorization_code.row
        session = db.session()
        svc = services()
        grant = oauth_tokens.lock_live_grant(
            session, tokens=svc.tokens, revocations=svc.revocations, grant_id=row.grant_id,
            family_id=row.family_id,
        )  # fmt: skip
        if grant is None:
            raise InvalidGrantError("The grant was withdrawn.")
        scope = oauth_tokens.code_scope(row, grant)
        if scope is None:  # the citizen has since consented to none of the code's scope
            raise InvalidGrantError("The consent no longer covers this code's scope.")
        return oauth_tokens.issue_for_citizen(
            session, tokens=svc.tokens, policy=oauth_policy(), revocations=svc.revocations, grant=grant,
            family_id=row.family_id, scope=scope, account=user, with_refresh=include_refresh_token,
        )  # fmt: skip


class _Refreshed:
    """What Authlib's refresh grant holds between validation and issue."""

    def __init__(self, claim: oauth_tokens.RefreshClaim) -> None:
        self.claim = claim

    def check_client(self, client: Any) -> bool:
        return client.get_client_id() == self.claim.grant.client_id

    def get_scope(self) -> str:
        return self.claim.row.scope


class RefreshToken(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation; a reused token revokes the whole grant

    def authenticate_refresh_token(self, refresh_token: str) -> _Refreshed | None:
        client = self.request.client
        # The signing key first (made in a session of its own when due): the claim below holds the
        # grant's lock until the new tokens are committed, and on SQLite that is the write lock.
        services().tokens.keyring.signing_key()
        claim = oauth_tokens.claim_refresh(
            db.session(), revocations=services().revocations, refresh_token=refresh_token,
            client_id=client.get_client_id(),
        )  # fmt: skip
        return _Refreshed(claim) if claim is not None else None

    def authenticate_user(self, refreshed: _Refreshed) -> Account | None:
        account = db.session().get(Account, refreshed.claim.grant.account_id)
        return account if account is not None and account.status == "active" else None

    def revoke_old_credential(self, refreshed: _Refreshed) -> None:
        """Nothing to do: claim_refresh rotated it."""

    def issue_token(self, user: Account, refreshed: _Refreshed) -> dict:
        """Under the grant's lock, like AuthorizationCode.generate_token."""
        claim = refreshed.claim
        session = db.session()
        svc = services()
        grant = oauth_tokens.lock_live_grant(
            session, tokens=svc.tokens, revocations=svc.revocations, grant_id=claim.grant.id,
            family_id=claim.family_id,
        )  # fmt: skip
        if grant is None:
            raise InvalidGrantError("The grant was withdrawn.")
        claim.grant = grant  # read afresh under the lock: the scopes it holds now
        scope = oauth_tokens.refresh_scope(self.request.payload.scope, claim, user)
        if scope is None:
            session.rollback()
            raise InvalidScopeError()
        return oauth_tokens.issue_for_citizen(
            session, tokens=svc.tokens, policy=oauth_policy(), revocations=svc.revocations,
            grant=grant, family_id=claim.family_id, scope=scope, account=user, with_refresh=True,
            refresh_scope=oauth_tokens.kept_scope(claim),  # RFC 6749 §6: the presented token's scope
        )  # fmt: skip


class ClientCredentials(grants.ClientCredentialsGrant):
    """Only the app's own scopes (catalog.read): never a citizen's data."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]

    def create_token_response(self) -> tuple[int, dict, list]:
        client = self.request.client
        asked = scope_catalog.parse(self.request.payload.scope) or client.client_scopes()
        if not asked or any(s not in client.client_scopes() for s in asked):
            raise InvalidScopeError()
        token = oauth_tokens.issue_for_client(
            services().tokens, oauth_policy(), client.row, scope_catalog.join(asked)
        )
        return 200, token, self.TOKEN_RESPONSE_HEADER
