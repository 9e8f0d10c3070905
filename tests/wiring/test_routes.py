"""Every route is protected unless listed here as public, and every route is documented."""

from __future__ import annotations

import re

PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/.well-known/jwks.json"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/sms/send"),
    ("POST", "/v1/auth/sms/login"),
    ("POST", "/v1/auth/miniprogram/login"),
    ("POST", "/admin/v1/auth/login"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/"),
    # The service catalog is public: citizens browse before they log in.
    ("GET", "/v1/services"),
    ("GET", "/v1/services/<string:code>"),
    ("GET", "/v1/services/<string:code>/versions/<int(min=1, max=2147483647):version>"),
    ("GET", "/v1/bundles"),
    ("GET", "/v1/bundles/<string:code>"),
    ("GET", "/v1/categories"),
    ("GET", "/v1/departments"),
    # Halls, their free slots and the public 好差评 figures: seen before logging in.
    ("GET", "/v1/halls"),
    ("GET", "/v1/services/<string:code>/slots"),
    ("GET", "/v1/services/<string:code>/ratings"),
    ("GET", "/v1/departments/<string:name>/ratings"),
    # OAuth 2.0: the authorization page signs the citizen in itself (cookie + CSRF); the token,
    # revocation and introspection endpoints authenticate the client, not a bearer token.
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/oauth/introspect"),
    ("POST", "/oauth/login/sms/send"),
    ("POST", "/oauth/login/sms"),
    ("POST", "/oauth/login/qr"),
    ("GET", "/oauth/login/qr/<string:request_id>"),
    ("POST", "/oauth/logout"),
}
SKIP_ENDPOINTS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui", "docs_assets.asset"}


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"x-\1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, path


def test_every_route_requires_authentication_unless_public(app, client):
    unprotected = []
    for method, rule, path in _routes(app):
        resp = client.open(path, method=method, json={} if method in {"POST", "PUT", "PATCH"} else None)
        if (method, rule) in PUBLIC:
            continue
        if rule == "/v1/platform/callbacks/<string:profile>" and resp.status_code == 404:
            continue  # no such province profile: nothing behind it to protect
        if resp.status_code != 401:
            unprotected.append((method, rule, resp.status_code))
        else:
            # The province's callbacks authenticate by signature, not by a bearer token.
            codes = ("auth.", "admin.", "platform.")
            assert resp.get_json()["error"]["code"].startswith(codes), (method, rule)
    assert unprotected == []


def test_public_list_has_no_stale_entries(app):
    rules = {(m, r) for m, r, _ in _routes(app)} | {
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/"),
    }
    assert PUBLIC - rules == set()


def test_every_route_is_in_the_openapi_document(app, client):
    spec = client.get("/openapi.json").get_json()
    documented = {
        (m.upper(), re.sub(r"\{([^}]+)\}", r"<\1>", p)) for p, ops in spec["paths"].items() for m in ops
    }
    missing = []
    for method, rule, _ in _routes(app):
        normalised = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule)
        if (method, normalised) not in documented:
            missing.append((method, rule))
    assert missing == []


def test_every_documented_parameter_says_what_it_holds(client):
    """OpenAPI 3: a Parameter Object has a schema or a content; without one, client generators
    and schema-driven test tools cannot use the document."""
    spec = client.get("/openapi.json").get_json()
    bare = [
        (method, path, param.get("name"))
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict)
        for param in [*op.get("parameters", []), *ops.get("parameters", [])]
        if "$ref" not in param and "schema" not in param and "content" not in param
    ]
    assert bare == []


def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200 and b"/docs/assets/swagger-ui-bundle.js" in page.data
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    assert client.get("/docs/assets/../../factory.py").status_code == 404
