"""The Authlib authorization server, wired once per app."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Flask

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


def build_server(app: Flask) -> AuthorizationServer:
    server = AuthorizationServer()
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
