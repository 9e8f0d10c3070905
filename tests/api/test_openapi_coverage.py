"""Every route the app serves is in GET /openapi.json, however it was registered (flask-smorest
Blueprint or plain Flask blueprint documented by hand, as api/oauth/openapi.py does): a new route
cannot be left out of the document silently. And the hand-written OAuth operations describe what
the routes really answer."""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from tests.api.openapi_schema import resolved

# Served but deliberately not operations of the document, by endpoint; nothing else may be left out.
NOT_DOCUMENTED = {
    "static": "Flask's static files (only when the app has a static folder)",
    "api-docs.openapi_json": "the OpenAPI document itself",
    "api-docs.openapi_swagger_ui": "the Swagger UI page that displays it (/docs)",
    "docs_assets.asset": "the Swagger UI's bundled JS/CSS (api/docs_assets.py), for the /docs page",
}
# Methods Flask answers by itself on every rule, not operations of any view.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}

OAUTH_OPERATIONS = {
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/oauth/introspect"),
    ("POST", "/oauth/login/sms/send"),
    ("POST", "/oauth/login/sms"),
    ("POST", "/oauth/login/qr"),
    ("GET", "/oauth/login/qr/{request_id}"),
    ("POST", "/oauth/logout"),
    ("GET", "/.well-known/oauth-authorization-server"),
}
ERROR_RESPONSE = {"$ref": "#/components/responses/DEFAULT_ERROR"}


def _spec(client: Any) -> dict:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def _openapi_path(rule: str) -> str:
    """/x/<string:id>/<int(min=1):n> → /x/{id}/{n}, as flask-smorest writes paths."""
    return re.sub(r"<(?:[^<>]*:)?([^:<>]+)>", r"{\1}", rule)


def test_every_served_route_is_documented(app: Any, client: Any) -> None:
    spec = _spec(client)
    documented = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops if m != "parameters"}
    served, missing = set(), []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_DOCUMENTED:
            continue
        for method in sorted(rule.methods - IMPLICIT_METHODS):
            served.add((method, _openapi_path(rule.rule)))
            if (method, _openapi_path(rule.rule)) not in documented:
                missing.append((method, rule.rule, rule.endpoint))
    assert missing == []
    assert OAUTH_OPERATIONS <= served
    # The allow-list names real endpoints (Flask's static route exists only with a static folder).
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(NOT_DOCUMENTED) - {"static"} <= endpoints


def test_no_documented_operation_is_left_without_a_route(app: Any, client: Any) -> None:
    served = {
        (method, _openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods - IMPLICIT_METHODS
    }
    spec = _spec(client)
    documented = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops if m != "parameters"}
    assert documented - served == set()


def test_the_oauth_operations_are_described(client: Any) -> None:
    spec = _spec(client)
    for method, path in OAUTH_OPERATIONS:
        op = spec["paths"][path][method.lower()]
        assert op.get("summary") and op.get("tags"), (method, path)
        responses = op["responses"]
        # Anything answered outside the view (a body too large, a fault) is the project's error body.
        assert responses["default"] == ERROR_RESPONSE, (method, path)
        assert any(code.startswith(("2", "3")) for code in responses), (method, path)
        if method == "POST":
            content = op["requestBody"]["content"]
            assert list(content) == ["application/x-www-form-urlencoded"], (method, path)
        for param in op.get("parameters", []):
            assert "schema" in param, (method, path, param)
    assert spec["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    # The protocol endpoints answer errors in RFC 6749's format, not the project's.
    oauth_error = {"$ref": "#/components/schemas/OAuthError"}
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        for status in ("400", "401", "429"):
            response = spec["paths"][path]["post"]["responses"][status]
            assert response["content"]["application/json"]["schema"] == oauth_error, (path, status)


def test_real_oauth_answers_match_the_document(client: Any) -> None:
    spec = _spec(client)
    metadata = client.get("/.well-known/oauth-authorization-server")
    assert metadata.status_code == 200
    jsonschema.validate(metadata.get_json(), resolved(spec, "AuthorizationServerMetadata"))
    documented = set(resolved(spec, "AuthorizationServerMetadata")["properties"])
    assert set(metadata.get_json()) == documented

    poll = client.get("/oauth/login/qr/nope")
    assert poll.status_code == 200
    jsonschema.validate(poll.get_json(), resolved(spec, "QrLoginStatus"))

    token = client.post("/oauth/token", data={"grant_type": "password"})
    assert token.status_code in (400, 401)
    jsonschema.validate(token.get_json(), resolved(spec, "OAuthError"))

    expired = client.post("/oauth/login/sms/send", data={"csrf": "x", "phone": "13900000000"})
    assert expired.status_code == 403 and expired.mimetype == "text/html"
    assert "403" in spec["paths"]["/oauth/login/sms/send"]["post"]["responses"]


def test_every_operation_documents_what_it_answers_when_it_succeeds(client: Any) -> None:
    """A client generated from the document needs each operation's success answer: a 2xx with
    its content (schema and type, unless 204) or a 3xx redirect, besides the errors."""
    spec = _spec(client)
    undocumented = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            responses = op["responses"]
            redirects = [code for code in responses if code.startswith("3")]
            successes = [code for code in responses if code.startswith("2")]
            if not successes and not redirects:
                undocumented.append((method.upper(), path, "no success response"))
            for code in successes:
                if code != "204" and not responses[code].get("content"):
                    undocumented.append((method.upper(), path, f"{code} without content"))
    assert not undocumented, "\n".join(" ".join(entry) for entry in undocumented)


def test_the_document_speaks_openapi_3_0(client: Any) -> None:
    """3.0 has no type lists (a null is `nullable: true`), no empty `required` lists, and its
    patterns are ECMA-262 regexes, where Python's \\A and \\Z anchors mean something else."""
    spec = _spec(client)
    assert spec["openapi"].startswith("3.0.")
    found: list[str] = []

    def walk(node: Any, at: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("type"), list):
                found.append(f"{at}: type list")
            if node.get("required") == []:
                found.append(f"{at}: empty required")
            pattern = node.get("pattern")
            if isinstance(pattern, str) and ("\\A" in pattern or "\\Z" in pattern):
                found.append(f"{at}: Python-only anchors in {pattern}")
            for key, value in node.items():
                walk(value, f"{at}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{at}/{i}")

    walk(spec, "")
    assert not found, "\n".join(found)
