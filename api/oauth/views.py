"""The OAuth 2.0 protocol endpoints and the authorization server metadata (RFC 8414).

/oauth/token, /oauth/revoke and /oauth/introspect take form bodies and answer in RFC 6749's
error format, which OAuth client libraries parse; /oauth/authorize is a page (api.oauth.pages).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from urllib.parse import unquote

from flask import Blueprint, Response, current_app, jsonify, make_response, request

from api.deps import services
from api.middleware import client_ip
from api.oauth.server import oauth_server
from core.errors import RateLimited
from domain.oauth.clients import ASSERTION_ALGORITHMS
from domain.oauth.scopes import SCOPES

log = logging.getLogger(__name__)

bp = Blueprint("oauth", __name__, url_prefix="/oauth", template_folder="templates")
wellknown = Blueprint("oauth_wellknown", __name__)


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def _several_auth_methods() -> Response | None:
    """RFC 6749 §2.3: a client uses one authentication method per request. Sent two (a Basic
    header and an assertion, say), the request is refused rather than judged by the first."""
    used = sum(
        (
            request.headers.get("Authorization", "").lower().startswith("basic "),
            "client_secret" in request.form,
            "client_assertion" in request.form,
        )
    )
    if used <= 1:
        return None
    body = {"error": "invalid_request", "error_description": "Use one client authentication method."}
    return _no_store(make_response(jsonify(body), 400))


def _unreadable_basic() -> Response | None:
    """An Authorization header with nothing after its scheme, or a Basic one whose credentials
    are not UTF-8, authenticates nobody: invalid_client (401), as RFC 6749 §5.2 answers any failed client
    authentication. (Authlib would raise on either.)"""
    header = request.headers.get("Authorization", "")
    # Authlib splits any header holding a space in two on any whitespace, Unicode's included, and
    # fails when there is one word ("Basic \xa0", "Bearer \x85"): no credentials, whatever the scheme.
    if " " in header and len(header.split(None, 1)) < 2:
        return _invalid_client("No client credentials in the Authorization header.")
    if not header.lower().startswith("basic "):
        return None
    try:
        base64.b64decode(header[6:].strip()).decode("utf-8")
    except UnicodeDecodeError:
        return _invalid_client("Client credentials are not UTF-8.")
    except ValueError:  # not base64: Authlib finds no credentials there, as before
        return None
    return None


def _invalid_client(description: str) -> Response:
    resp = make_response(jsonify({"error": "invalid_client", "error_description": description}), 401)
    resp.headers["WWW-Authenticate"] = 'Basic realm="yiwang"'
    return _no_store(resp)


# What these endpoints read (RFC 6749 §§4-6, RFC 7009, RFC 7662, RFC 7521/7523, RFC 7636).
# Others are ignored, repeated or not (§3.2), as RFC 8707's `resource` may be.
READ_PARAMETERS = ("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
                   "client_id", "client_secret", "client_assertion", "client_assertion_type", "assertion",
                   "token", "token_type_hint")  # fmt: skip


def _repeated_parameter() -> Response | None:
    """RFC 6749 §3.2: a parameter these endpoints read, sent more than once with a value (twice
    in the body, or once in the query and once in the body), is refused, not read as its first
    value: a proxy or a log reading another occurrence would see a different request. An empty
    occurrence counts as omitted (§3.2); parameters not read are ignored."""
    for name in READ_PARAMETERS:
        if len([v for v in request.values.getlist(name) if v]) > 1:
            who = {"parameter": name, "client_id": _presented_client()}
            log.warning("oauth parameter repeated", extra=who)
            body = {"error": "invalid_request", "error_description": f"Parameter '{name}' is repeated."}
            return _no_store(make_response(jsonify(body), 400))
    return None


def _refused_early() -> Response | None:
    return _repeated_parameter() or _several_auth_methods() or _unreadable_basic()


# Failed client authentications (guessing a secret, forging an assertion) are counted per client
# and address, and per address over all clients; only failures count, so requests in flight at
# once never hold each other back. A stranger failing in a client's name from elsewhere does not
# lock the client out, and a busy client's backend, answering for many citizens from one
# address, is never slowed.
FAILURES_PER_CLIENT_AND_IP = (10, 600)  # failures, seconds
FAILURES_PER_IP = (50, 600)


def _presented_client() -> str:
    """The client id a request names (Basic header or form); "-" if none."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            user = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")[0]
            return unquote(user)[:128] or "-"
        except (ValueError, UnicodeDecodeError):
            return "-"
    return (request.form.get("client_id") or "-")[:128]


def _guarded(answer: Callable[[], Response]) -> Response:
    """Answer unless the (client, address) pair or the address has failed client authentication
    too often; count this request's failure. Over a limit: 429 with Retry-After, in RFC 6749's
    error format."""
    limiter = services().ratelimiter
    ip = client_ip()
    limits = (
        ("oauth-auth-failures", f"{_presented_client()}|{ip}", FAILURES_PER_CLIENT_AND_IP),
        ("oauth-auth-failures-ip", ip, FAILURES_PER_IP),
    )
    try:
        for name, ident, (limit, window) in limits:
            limiter.check(name, ident, limit=limit, window=window)
    except RateLimited as exc:
        retry = int(exc.headers["Retry-After"])
        body = {
            "error": "slow_down",
            "error_description": f"Too many failed attempts; try again in {retry} seconds.",
        }
        resp = make_response(jsonify(body), 429)
        resp.headers["Retry-After"] = str(retry)
        return _no_store(resp)
    resp = answer()
    if resp.status_code == 401 and "WWW-Authenticate" not in resp.headers:
        # RFC 6749 5.2: a 401 names the client authentication scheme (Authlib's introspection
        # and revocation endpoints leave it out).
        resp.headers["WWW-Authenticate"] = 'Basic realm="yiwang"'
    if _client_authentication_failed(resp):
        for name, ident, (_limit, window) in limits:
            limiter.record(name, ident, window=window)
    return resp


def _client_authentication_failed(resp: Response) -> bool:
    """Whether the answer refuses the client's credentials: RFC 6749's invalid_client (§5.2),
    whatever its status. Other refusals, 401s included, say nothing about the credentials and
    are not counted."""
    body = resp.get_json(silent=True) if resp.is_json else None
    return isinstance(body, dict) and body.get("error") == "invalid_client"


@bp.post("/token")
def token() -> Response:
    """Code (with PKCE), refresh (rotating) and client_credentials grants."""
    return _guarded(lambda: _refused_early() or _no_store(oauth_server().create_token_response()))


@bp.post("/revoke")
def revoke() -> Response:
    """RFC 7009: 200 whether or not the token was known."""
    return _guarded(
        lambda: _refused_early() or _no_store(oauth_server().create_endpoint_response("revocation"))
    )


@bp.post("/introspect")
def introspect() -> Response:
    """RFC 7662, client-authenticated; a client learns only about its own tokens."""
    return _guarded(
        lambda: _refused_early() or _no_store(oauth_server().create_endpoint_response("introspection"))
    )


@wellknown.get("/.well-known/oauth-authorization-server")
def metadata() -> Response:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    body = {
        "issuer": services().tokens.issuer,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["zh-CN"],
    }
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp
