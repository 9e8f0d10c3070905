"""Authlib's view of yiwang's rows: a client, a redeemed code, a refresh or access token."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin

from core import clock
from domain.oauth import clients
from domain.oauth import scopes as scope_catalog
from domain.oauth.models import NO_AUTH, PUBLIC, OAuthClient, OAuthCode, OAuthGrant

CITIZEN_GRANTS = ("authorization_code", "refresh_token")


class Client(ClientMixin):
    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.id

    def get_client_id(self) -> str:
        return self.row.id

    def get_default_redirect_uri(self) -> None:
        return None  # every authorization request must name its redirect URI

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The asked scope if the client may ask a citizen for all of it (scopes it is registered
        for that the catalog knows); None (invalid_scope) otherwise. The app's own scopes
        (catalog.read) come from client_credentials, not consent."""
        asked = scope_catalog.parse(scope)
        known = {s for s in self.row.scopes.split() if s in scope_catalog.SCOPES}
        allowed = known - scope_catalog.CLIENT_ONLY
        if not asked or any(s not in allowed for s in asked):
            return None
        return scope_catalog.join(asked)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return clients.redirect_uri_matches(self.row, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return clients.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.row.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.citizen_scopes()

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type in CITIZEN_GRANTS:
            return self.citizen_scopes()
        if grant_type == "client_credentials":
            return (
                self.row.client_type != PUBLIC
                and self.row.auth_method != NO_AUTH
                and bool(self.client_scopes())
            )
        return False

    def citizen_scopes(self) -> bool:
        return any(s not in scope_catalog.CLIENT_ONLY for s in self.row.scopes.split())

    def client_scopes(self) -> list[str]:
        return [s for s in self.row.scopes.split() if s in scope_catalog.CLIENT_ONLY]


class Code(AuthorizationCodeMixin):
    def __init__(self, row: OAuthCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method
        self.grant: OAuthGrant | None = None  # loaded with the account (AuthorizationCode.authenticate_user)

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class Token(TokenMixin):
    """A token found by revocation or introspection: `kind` is access_token or refresh_token."""

    def __init__(
        self, kind: str, client_id: str, *, active: bool, claims: dict[str, Any], row: Any = None
    ) -> None:
        self.kind = kind
        self.client_id = client_id
        self.active = active
        self.claims = claims
        self.row = row

    def check_client(self, client: Client) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.claims.get("scope", "")

    def get_expires_in(self) -> int:
        return max(0, int(self.claims.get("exp", 0) - clock.timestamp()))

    def is_expired(self) -> bool:
        return self.claims.get("exp", 0) <= clock.timestamp()

    def is_revoked(self) -> bool:
        return not self.active
