"""The OAuth routes in the OpenAPI document. They are plain Flask routes (forms, HTML pages, RFC 6749
error bodies, a browser cookie), not flask-smorest views, so their operations are written here by
hand and added with `spec.path`: the routes themselves stay exactly as they are.

What each one really answers:
- /oauth/token, /oauth/revoke, /oauth/introspect: JSON, errors in RFC 6749 §5.2's format
  (components.schemas.OAuthError), which OAuth client libraries parse.
- /oauth/authorize and the sign-in steps of its page (/oauth/login/..., /oauth/logout): HTML forms
  posted by the page itself, answered with HTML or a 303/302 redirect; they need the page's
  HttpOnly cookie (yw_oauth) and its CSRF token. Only the QR poll answers JSON.
- /.well-known/oauth-authorization-server: the RFC 8414 metadata.
Anything the app answers outside the view (a body over the size limit, a fault) is the project's
error body: `default` → components.responses.DEFAULT_ERROR, as for every other operation.
"""

from __future__ import annotations

import copy
from typing import Any

TAG = "OAuth 2.0 (第三方应用授权)"
_FORM = "application/x-www-form-urlencoded"
_HTML = {"text/html": {"schema": {"type": "string"}}}
_DEFAULT = "DEFAULT_ERROR"  # components.responses.DEFAULT_ERROR: the project's Error schema (api.errors)
_NO_STORE = {"Cache-Control": {"description": "no-store", "schema": {"type": "string"}}}
_SET_COOKIE = {
    "Set-Cookie": {
        "description": "yw_oauth (HttpOnly, SameSite=Lax, Path=/oauth, 15 minutes): the page's sign-in",
        "schema": {"type": "string"},
    }
}
_LOCATION = {"Location": {"description": "where to go next", "schema": {"type": "string"}}}
_COOKIE = {
    "in": "cookie",
    "name": "yw_oauth",
    "required": False,
    "description": "Set by GET /oauth/authorize; names the browser's sign-in record (CSRF token, account).",
    "schema": {"type": "string", "maxLength": 100},
}
# The authorization request's parameters: the page carries them through every step.
_AUTHORIZATION = {
    "response_type": "code",
    "client_id": "the app's client id",
    "redirect_uri": "exactly as registered",
    "scope": "space-separated scopes",
    "state": "required; returned unchanged",
    "code_challenge": "PKCE, required",
    "code_challenge_method": "S256",
}


def _oauth_error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An RFC 6749 §5.2 error body (Cache-Control: no-store)."""
    return {
        "description": description,
        "headers": {**_NO_STORE, **(headers or {})},
        "content": {"application/json": {"schema": "OAuthError"}},
    }


_INVALID_REQUEST = _oauth_error("invalid_request and the like (two client authentication methods, say)")
_INVALID_CLIENT = _oauth_error(
    "invalid_client: client authentication failed",
    {"WWW-Authenticate": {"description": 'Basic realm="yiwang"', "schema": {"type": "string"}}},
)
_SLOW_DOWN = _oauth_error(
    "slow_down: too many failed client authentications from this client and address, or this address",
    {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
)


def _html(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": _HTML, **({"headers": headers} if headers else {})}


_EXPIRED_PAGE = _html("error page: no sign-in cookie, an unknown client or a wrong CSRF token (page expired)")
# The sign-in forms carry the authorization request, checked again as GET /oauth/authorize checks it.
_REFUSED_REQUEST_REDIRECT = {
    "description": "the authorization request carried is refused (e.g. invalid_scope): to the app "
    "with error, error_description, state, iss, as GET /oauth/authorize answers it",
    "headers": _LOCATION,
}
_REFUSED_REQUEST_PAGE = "error page: the authorization request carried is refused (e.g. an unapproved client)"


def _form(required: list[str], *, authorization: bool = False, **props: str) -> dict[str, Any]:
    fields = {**(_AUTHORIZATION if authorization else {}), **props}
    properties = {k: {"type": "string", "description": v} for k, v in fields.items()}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:  # OpenAPI 3.0 allows no empty list here
        schema["required"] = required
    return {"required": True, "content": {_FORM: {"schema": schema}}}


_CLIENT_AUTH = {
    "client_id": "public clients (and to name a client authenticating with an assertion)",
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer (private_key_jwt)",
    "client_assertion": "a JWT signed with the client's key (private_key_jwt)",
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "OAuthError": {
        "type": "object",
        "description": "RFC 6749 §5.2 error (not components.schemas.Error): OAuth client libraries parse it",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "example": "invalid_grant"},
            "error_description": {"type": "string"},
        },
    },
    "OAuthToken": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "example": "Bearer"},
            "expires_in": {"type": "integer"},
            "scope": {"type": "string"},
            "refresh_token": {"type": "string", "description": "code and refresh grants; rotated on use"},
        },
    },
    "OAuthIntrospection": {
        "type": "object",
        "required": ["active"],
        "description": "RFC 7662 §2.2; an unknown, expired or another client's token: {active: false}",
        "properties": {"active": {"type": "boolean"}},
        "additionalProperties": True,
    },
    "QrLoginStatus": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["pending", "approved", "denied", "used", "expired"]}
        },
    },
    "AuthorizationServerMetadata": {
        "type": "object",
        "description": "RFC 8414 §2",
        "required": ["issuer", "authorization_endpoint", "token_endpoint", "response_types_supported"],
        "properties": {
            **{
                k: {"type": "string"}
                for k in (
                    "issuer",
                    "authorization_endpoint",
                    "token_endpoint",
                    "revocation_endpoint",
                    "introspection_endpoint",
                    "jwks_uri",
                )
            },  # fmt: skip
            **{
                k: {"type": "array", "items": {"type": "string"}}
                for k in (
                    "scopes_supported",
                    "response_types_supported",
                    "response_modes_supported",
                    "grant_types_supported",
                    "code_challenge_methods_supported",
                    "token_endpoint_auth_methods_supported",
                    "token_endpoint_auth_signing_alg_values_supported",
                    "revocation_endpoint_auth_methods_supported",
                    "introspection_endpoint_auth_methods_supported",
                    "ui_locales_supported",
                )
            },  # fmt: skip
            "authorization_response_iss_parameter_supported": {"type": "boolean"},
        },
    },
}

# Client authentication at the token, revocation and introspection endpoints: HTTP Basic
# (client_secret_basic), or none in the header (private_key_jwt in the form; public clients).
_CLIENT_SECURITY = [{"oauthClientBasic": []}, {}]

OPERATIONS: dict[str, dict[str, Any]] = {
    "/oauth/authorize": {
        "get": {
            "tags": [TAG],
            "summary": "Authorization page (HTML): sign in, consent, then 302 to redirect_uri",
            "description": "response_type=code, client_id, redirect_uri (exact), scope, state (required), "
            "code_challenge + code_challenge_method=S256 (required). The answer carries code, state and iss.",
            "parameters": [
                {
                    "in": "query",
                    "name": k,
                    "required": k != "scope",
                    "description": v,
                    "schema": {"type": "string"},
                }
                for k, v in _AUTHORIZATION.items()
            ]
            + [_COOKIE],
            "responses": {
                "200": _html("sign-in or consent page", _SET_COOKIE),
                "302": {
                    "description": "to the app with error, error_description, state, iss",
                    "headers": _LOCATION,
                },
                "400": _html("error page (nothing is sent to an unverified URI)"),
                "default": _DEFAULT,
            },
        },
        "post": {
            "tags": [TAG],
            "summary": "The consent page's form (same-origin, CSRF token)",
            "parameters": [_COOKIE],
            "requestBody": _form(
                ["csrf", "decision", "client_id", "redirect_uri"],
                authorization=True,
                csrf="from the page",
                decision="allow or deny",
                days="30, 90, 180 or 365",
                sensitive="ticked sensitive scopes (repeatable)",
            ),
            "responses": {
                "200": _html("the consent page again, with the problem (e.g. a period not offered)"),
                "302": {
                    "description": "to the app: code (or error=access_denied), state, iss",
                    "headers": _LOCATION,
                },
                "400": _html("error page: an invalid authorization request"),
                "401": _html("error page: not signed in"),
                "403": _html("error page: expired page (no cookie or wrong CSRF token)"),
                "default": _DEFAULT,
            },
        },
    },
    "/oauth/login/sms/send": {
        "post": {
            "tags": [TAG],
            "summary": "Sign-in page: send an SMS code (HTML form)",
            "description": "Posted by the page GET /oauth/authorize shows; answers the page's next step.",
            "parameters": [_COOKIE],
            "requestBody": _form(
                ["csrf", "client_id", "phone"],
                authorization=True,
                csrf="from the page",
                phone="mobile number",
            ),
            "responses": {
                "200": _html("sign-in page asking for the code"),
                "302": _REFUSED_REQUEST_REDIRECT,
                "400": _html(
                    f"sign-in page with the problem (bad number, too many codes); {_REFUSED_REQUEST_PAGE}"
                ),
                "403": _EXPIRED_PAGE,
                "default": _DEFAULT,
            },
        }
    },
    "/oauth/login/sms": {
        "post": {
            "tags": [TAG],
            "summary": "Sign-in page: sign in with the SMS code (HTML form)",
            "parameters": [_COOKIE],
            "requestBody": _form(
                ["csrf", "client_id", "phone", "code"],
                authorization=True,
                csrf="from the page",
                phone="mobile number",
                code="the code sent by SMS",
            ),
            "responses": {
                "303": {
                    "description": "signed in: back to /oauth/authorize with the same parameters (consent)",
                    "headers": {**_LOCATION, **_SET_COOKIE},
                },
                "302": _REFUSED_REQUEST_REDIRECT,
                "400": _html(
                    "sign-in page with the problem (wrong or expired code, too many attempts); "
                    + _REFUSED_REQUEST_PAGE
                ),
                "403": _EXPIRED_PAGE,
                "default": _DEFAULT,
            },
        }
    },
    "/oauth/login/qr": {
        "post": {
            "tags": [TAG],
            "summary": "Sign-in page: show a QR code to approve on a phone signed in to the app (HTML form)",
            "description": "The page then polls GET /oauth/login/qr/{request_id}.",
            "parameters": [_COOKIE],
            "requestBody": _form(["csrf", "client_id"], authorization=True, csrf="from the page"),
            "responses": {
                "200": _html("QR page (SVG inline)"),
                "302": _REFUSED_REQUEST_REDIRECT,
                "400": _html(_REFUSED_REQUEST_PAGE),
                "403": _EXPIRED_PAGE,
                "default": _DEFAULT,
            },
        }
    },
    "/oauth/login/qr/<string:request_id>": {
        "get": {
            "tags": [TAG],
            "summary": "Sign-in page: poll a QR sign-in (JSON)",
            "description": "approved signs this browser in (new cookie) and is answered once; without the "
            "browser's cookie, or for another browser's request, the answer is expired.",
            "parameters": [_COOKIE],  # request_id: added at path level from the rule
            "responses": {
                "200": {
                    "description": "the request's status",
                    "headers": _SET_COOKIE,
                    "content": {"application/json": {"schema": "QrLoginStatus"}},
                },
                "default": _DEFAULT,
            },
        }
    },
    "/oauth/logout": {
        "post": {
            "tags": [TAG],
            "summary": "Sign-in page: sign this browser out (HTML form)",
            "parameters": [_COOKIE],
            "requestBody": _form([], authorization=True),
            "responses": {
                "303": {
                    "description": "back to /oauth/authorize with the same parameters; the cookie is cleared",
                    "headers": {**_LOCATION, **_SET_COOKIE},
                },
                "403": _html("error page: expired page (wrong CSRF token); the browser stays signed in"),
                "default": _DEFAULT,
            },
        }
    },
    "/oauth/token": {
        "post": {
            "tags": [TAG],
            "summary": "Token endpoint: authorization_code (+PKCE), refresh_token, client_credentials",
            "security": _CLIENT_SECURITY,
            "requestBody": _form(
                ["grant_type"],
                grant_type="authorization_code | refresh_token | client_credentials",
                code="the code",
                redirect_uri="as in the authorization request",
                code_verifier="PKCE verifier",
                refresh_token="for refresh_token",
                scope="optional narrowing",
                **_CLIENT_AUTH,
            ),
            "responses": {
                "200": {
                    "description": "tokens",
                    "headers": _NO_STORE,
                    "content": {"application/json": {"schema": "OAuthToken"}},
                },
                "400": _INVALID_REQUEST,
                "401": _INVALID_CLIENT,
                "429": _SLOW_DOWN,
                "default": _DEFAULT,
            },
        }
    },
    "/oauth/revoke": {
        "post": {
            "tags": [TAG],
            "summary": "RFC 7009 revocation (a refresh token ends its token family)",
            "security": _CLIENT_SECURITY,
            "requestBody": _form(
                ["token"],
                token="access or refresh token",
                token_type_hint="optional hint; an unknown one is ignored",
                **_CLIENT_AUTH,
            ),
            "responses": {
                "200": {
                    "description": "revoked, or nothing to revoke (an empty JSON object)",
                    "headers": _NO_STORE,
                    "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
                },
                "400": _INVALID_REQUEST,
                "401": _INVALID_CLIENT,
                "429": _SLOW_DOWN,
                "default": _DEFAULT,
            },
        }
    },
    "/oauth/introspect": {
        "post": {
            "tags": [TAG],
            "summary": "RFC 7662 introspection (client authentication required; own tokens only)",
            "security": [{"oauthClientBasic": []}, {}],
            "requestBody": _form(
                ["token"],
                token="access or refresh token",
                token_type_hint="optional hint; an unknown one is ignored",
                **_CLIENT_AUTH,
            ),
            "responses": {
                "200": {
                    "description": "{active: true, ...} or exactly {active: false}",
                    "headers": _NO_STORE,
                    "content": {"application/json": {"schema": "OAuthIntrospection"}},
                },
                "400": _INVALID_REQUEST,
                "401": _INVALID_CLIENT,
                "429": _SLOW_DOWN,
                "default": _DEFAULT,
            },
        }
    },
    "/.well-known/oauth-authorization-server": {
        "get": {
            "tags": [TAG],
            "summary": "Authorization server metadata (RFC 8414)",
            "description": "The endpoints, scopes, grant types and client authentication methods; cacheable.",
            "responses": {
                "200": {
                    "description": "the metadata",
                    "headers": {
                        "Cache-Control": {"description": "public, max-age=3600", "schema": {"type": "string"}}
                    },
                    "content": {"application/json": {"schema": "AuthorizationServerMetadata"}},
                },
                "default": _DEFAULT,
            },
        }
    },
}


def document(spec: Any, url_map: Any) -> None:
    """Add the OAuth operations (and the schemas they name) to the OpenAPI document."""
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    spec.components.security_scheme(
        "oauthClientBasic",
        {"type": "http", "scheme": "basic", "description": "client_secret_basic: client_id:client_secret"},
    )
    rules = {r.rule: r for r in url_map.iter_rules()}
    for path, operations in OPERATIONS.items():
        spec.path(rule=rules[path], operations=copy.deepcopy(operations))  # apispec resolves refs in place
