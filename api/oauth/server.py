"""The Authlib authorization server, wired once per app."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import Flask
from flask import request as http_request

from api.oauth import endpoints, grants
from api.oauth.adapters import Client
from core.db import db
from domain.oauth import clients


def _query_client(client_id: str) -> Client | None:
    """Only approved clients exist for the protocol; pending and suspended ones get invalid_client."""
    if not clients.could_be_client_id(client_id):
        return None
    row = db.session().get(clients.OAuthClient, client_id)
    return Client(row) if clients.usable(row) else None


def _save_token(token: dict, request: Any) -> None:
    """Nothing to do: the domain stores what it issues when it issues it."""


class Server(AuthorizationServer):
    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        """RFC 6749 §2.3: once a client has authenticated (Basic header, assertion, or as a public
        client by its client_id), a `client_id` in the body may only repeat its id. One naming
        another client, or nothing any client could be called, contradicts the authentication:
        400 invalid_request, and no token (docs/oauth.md). An empty one counts as absent (§3.2)."""
        client = super().authenticate_client(request, methods, endpoint)
        named = [value for value in http_request.form.getlist("client_id") if value]
        if any(value != client.get_client_id() for value in named):
            raise InvalidRequestError(description="client_id does not match the authenticated client.")
        return client


def build_server(app: Flask) -> AuthorizationServer:
    server = Server()
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(grants.AuthorizationCode, [grants.S256Required(required=True)])
    server.register_grant(grants.RefreshToken)
    server.register_grant(grants.ClientCredentials)
    server.register_endpoint(endpoints.Revocation)
    server.register_endpoint(endpoints.Introspection)
    pkj = endpoints.PrivateKeyJwt()
    server.register_client_auth_method(pkj.CLIENT_AUTH_METHOD, pkj)
    server.register_extension(endpoints.Issuer())
    app.extensions["yiwang_oauth"] = server
    return server


def oauth_server() -> AuthorizationServer:
    from flask import current_app

    return current_app.extensions["yiwang_oauth"]
