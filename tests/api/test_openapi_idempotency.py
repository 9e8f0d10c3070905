"""Every operation that honours an Idempotency-Key says so in GET /openapi.json (a client generated
from the document learns to send it), marked required where the request is refused without it,
with the key's format as the server checks it; an operation that ignores the header does not
mention it. The operations are found from the app's views, so a new one cannot be left out."""

from __future__ import annotations

import re
from typing import Any

from api.idempotency import HEADER
from tests.api.test_openapi_coverage import IMPLICIT_METHODS, _openapi_path


def _idempotent_wrapper(view: Any) -> Any:
    """The @idempotent wrapper among the view's decorators (None when it has none)."""
    while view is not None:
        if getattr(view, "_yiwang_idempotent", False):
            return view
        view = getattr(view, "__wrapped__", None)
    return None


def _operations(app: Any) -> dict[tuple[str, str], Any]:
    """(method, OpenAPI path) → the @idempotent wrapper of its view, or None."""
    found = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        cls = getattr(view, "view_class", None)
        for method in rule.methods - IMPLICIT_METHODS:
            func = getattr(cls, method.lower(), None) if cls is not None else view
            found[(method, _openapi_path(rule.rule))] = _idempotent_wrapper(func)
    return found


def _key_parameters(spec: dict, method: str, path: str) -> list[dict]:
    operation = spec["paths"][path][method.lower()]
    return [p for p in operation.get("parameters", []) if p.get("in") == "header" and p["name"] == HEADER]


def test_every_idempotent_operation_declares_the_key_and_no_other_does(app: Any, client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    operations = _operations(app)
    idempotent = {op: wrapper for op, wrapper in operations.items() if wrapper is not None}
    assert len(idempotent) >= 60  # the views were found (POST, PUT, PATCH and DELETE alike)
    wrong = []
    for (method, path), wrapper in sorted(idempotent.items()):
        declared = _key_parameters(spec, method, path)
        required = getattr(wrapper, "_yiwang_idempotent_required", None)
        if len(declared) != 1 or declared[0].get("required") is not required:
            wrong.append(f"{method} {path}: {declared} (required: {required})")
    assert wrong == [], "\n".join(wrong)
    extra = [
        f"{method} {path}"
        for (method, path), wrapper in sorted(operations.items())
        if wrapper is None and path in spec["paths"] and _key_parameters(spec, method, path)
    ]
    assert extra == []
    assert not _key_parameters(spec, "GET", "/v1/appointments")
    assert not _key_parameters(spec, "GET", "/v1/applications/{app_id}/form")


def test_the_key_is_required_where_the_server_refuses_a_request_without_it(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    (submit,) = _key_parameters(spec, "POST", "/v1/applications/{app_id}/submit")
    (book,) = _key_parameters(spec, "POST", "/v1/appointments")
    assert submit["required"] is True and book["required"] is False
    for param in (submit, book):
        assert param["schema"]["type"] == "string"
        assert "idempotency.in_progress" in param["description"]  # English, naming the codes
    assert "428" in submit["description"] and "428" not in book["description"]


def test_the_documented_format_is_the_one_the_server_checks(client: Any, citizen: dict) -> None:
    spec = client.get("/openapi.json").get_json()
    (param,) = _key_parameters(spec, "POST", "/v1/appointments")
    longest, pattern = param["schema"]["maxLength"], param["schema"]["pattern"]

    def sent(key: str) -> Any:
        return client.post("/v1/appointments", json={}, headers=citizen["headers"] | {HEADER: key})

    assert re.fullmatch(pattern, "k" * longest) and sent("k" * longest).status_code == 422  # the body
    for bad in ("k" * (longest + 1), "with space", "clé-1"):
        answer = sent(bad)
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "idempotency.key_invalid"
        assert len(bad) > longest or not re.fullmatch(pattern, bad)


def test_the_key_is_declared_beside_parameters_written_by_hand() -> None:
    """flask-smorest lets `@blp.doc(parameters=...)` replace the generated parameter list: the
    header joins the hand-written ones rather than being dropped (nor dropping them)."""
    from flask import Flask
    from flask.views import MethodView
    from flask_smorest import Api

    from api.blueprint import Blueprint
    from api.idempotency import idempotent

    app = Flask("doc-only")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    blp = Blueprint("things", __name__, url_prefix="/things")

    @blp.route("")
    class Things(MethodView):
        @idempotent(required=True)
        @blp.doc(parameters=[{"in": "header", "name": "X-Trace", "schema": {"type": "string"}}])
        @blp.response(204)
        def post(self) -> None:
            """Make a thing."""

    api = Api(app)
    api.register_blueprint(blp)
    params = api.spec.to_dict()["paths"]["/things"]["post"]["parameters"]
    assert [(p["name"], p["required"] if p["name"] == HEADER else None) for p in params] == [
        ("X-Trace", None),
        (HEADER, True),
    ]
