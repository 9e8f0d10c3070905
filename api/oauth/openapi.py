"""The OAuth protocol endpoints in the OpenAPI document (they are plain Flask routes taking forms)."""

from __future__ import annotations

from typing import Any

TAG = "OAuth 2.0 (第三方应用授权)"
_FORM = "application/x-www-form-urlencoded"
_ERROR = {"description": "RFC 6749 §5.2 error: {error, error_description}"}


def _form(required: list[str], **props: str) -> dict[str, Any]:
    properties = {k: {"type": "string", "description": v} for k, v in props.items()}
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {_FORM: {"schema": schema}}}


OPERATIONS: dict[str, dict[str, Any]] = {
    "/oauth/authorize": {
        "get": {
            "tags": [TAG],
            "summary": "Authorization page (HTML): sign in, consent, then 302 to redirect_uri",
            "description": "response_type=code, client_id, redirect_uri (exact), scope, state (required), "
            "code_challenge + code_challenge_method=S256 (required). The answer carries code, state and iss.",
            "responses": {
                "200": {"description": "sign-in or consent page"},
                "302": {"description": "to the app"},
                "400": {"description": "error page (nothing is sent to an unverified URI)"},
            },
        },
        "post": {
            "tags": [TAG],
            "summary": "The consent page's form (same-origin, CSRF token)",
            "requestBody": _form(
                ["csrf", "decision"],
                csrf="from the page",
                decision="allow or deny",
                days="30, 90, 180 or 365",
                sensitive="ticked sensitive scopes (repeatable)",
            ),
            "responses": {
                "302": {"description": "code (or error=access_denied), state, iss"},
                "403": {"description": "expired page"},
            },
        },
    },
    "/oauth/token": {
        "post": {
            "tags": [TAG],
            "summary": "Token endpoint: authorization_code (+PKCE), refresh_token, client_credentials",
            "requestBody": _form(
                ["grant_type"],
                grant_type="authorization_code | refresh_token | client_credentials",
                code="the code",
                redirect_uri="as in the authorization request",
                code_verifier="PKCE verifier",
                refresh_token="for refresh_token",
                scope="optional narrowing",
                client_id="public clients only",
            ),
            "responses": {
                "200": {"description": "{access_token, token_type, expires_in, scope, refresh_token}"},
                "400": _ERROR,
                "401": _ERROR,
            },
        }
    },
    "/oauth/revoke": {
        "post": {
            "tags": [TAG],
            "summary": "RFC 7009 revocation (a refresh token ends its token family)",
            "requestBody": _form(["token"], token="access or refresh token", token_type_hint="optional"),
            "responses": {"200": {"description": "revoked, or nothing to revoke"}, "401": _ERROR},
        }
    },
    "/oauth/introspect": {
        "post": {
            "tags": [TAG],
            "summary": "RFC 7662 introspection (client authentication required; own tokens only)",
            "requestBody": _form(["token"], token="access or refresh token", token_type_hint="optional"),
            "responses": {
                "200": {"description": "{active: true, ...} or exactly {active: false}"},
                "401": _ERROR,
            },
        }
    },
}


def document(spec: Any, url_map: Any) -> None:
    rules = {r.rule: r for r in url_map.iter_rules()}
    for path, operations in OPERATIONS.items():
        spec.path(rule=rules[path], operations=operations)
