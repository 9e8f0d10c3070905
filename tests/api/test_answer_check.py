"""The check every test's answers go through (tests/answer_check.py) sees what a generated client
would trip on, and lets a documented answer pass."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from tests.answer_check import AnswerCheck


@pytest.fixture
def check(app: Any) -> AnswerCheck:
    return AnswerCheck(app)  # not connected: fed by hand below


def _answer(app: Any, check: AnswerCheck, method: str, path: str, status: int, body: Any = None,
            **headers: str) -> list[str]:  # fmt: skip
    raw = b"" if body is None else json.dumps(body).encode()
    if headers.get("Content-Encoding") == "gzip":
        raw = gzip.compress(raw)
    response = app.response_class(raw, status=status, mimetype="application/json", headers=headers)
    if body is None:
        del response.headers["Content-Type"]
    with app.test_request_context(path, method=method):
        check._finished(app, response)
    return check.take()


ME = {
    "id": "a1", "status": "active", "identity_level": "L1", "phone": "139****0000",
    "channels": {"app": True}, "session_id": "s1", "channel": "app",
}  # fmt: skip
ERROR = {"error": {"code": "applications.not_found", "message": "申请不存在", "request_id": "r1"}}


def _documented_me(app: Any) -> dict:
    """A body GET /v1/me documents, built from its schema's own field names."""
    from tests.api.openapi_schema import answer_schema

    spec = app.test_client().get("/openapi.json").get_json()
    schema = answer_schema(spec, "get", "/v1/me")
    return {name: ME[name] for name in schema["properties"] if name in ME}


def test_a_documented_answer_passes_compressed_or_not(app: Any, check: AnswerCheck) -> None:
    body = _documented_me(app)
    assert body, "GET /v1/me documents none of the fields this test knows"
    assert _answer(app, check, "GET", "/v1/me", 200, body) == []
    assert _answer(app, check, "GET", "/v1/me", 200, body, **{"Content-Encoding": "gzip"}) == []
    assert _answer(app, check, "GET", "/v1/applications/a1", 404, ERROR) == []


def test_an_undocumented_field_a_wrong_type_and_an_unlisted_status_are_seen(
    app: Any, check: AnswerCheck
) -> None:
    body = _documented_me(app)
    [extra] = _answer(app, check, "GET", "/v1/me", 200, body | {"surprise": 1})
    assert "surprise" in extra and extra.startswith("GET /v1/me → 200")
    [typed] = _answer(app, check, "GET", "/v1/me", 200, body | {"id": 7})
    assert "7 is not of type 'string'" in typed
    [status] = _answer(app, check, "GET", "/v1/me", 201, body)
    assert "status not documented" in status


def test_an_error_outside_the_error_format_and_a_204_with_a_media_type_are_seen(
    app: Any, check: AnswerCheck
) -> None:
    [error] = _answer(app, check, "GET", "/v1/applications/a1", 404, {"detail": "not found"})
    assert "'error' is a required property" in error
    [empty] = _answer(app, check, "DELETE", "/v1/devices/d1", 204, "")
    assert "204 with a Content-Type" in empty
    assert _answer(app, check, "DELETE", "/v1/devices/d1", 204) == []
    assert _answer(app, check, "GET", "/no/such/route", 200, {"x": 1}) == []  # not an operation


def test_oauth_errors_are_checked_against_rfc_6749(app: Any, check: AnswerCheck) -> None:
    good = {"error": "invalid_client", "error_description": "Bad client credentials."}
    kept = {"Cache-Control": "no-store", "WWW-Authenticate": 'Basic realm="yiwang"'}
    assert _answer(app, check, "POST", "/oauth/token", 401, good, **kept) == []
    assert "not an RFC 6749 error" in _answer(app, check, "POST", "/oauth/token", 400, ERROR, **kept)[0]
    assert "no-store" in _answer(app, check, "POST", "/oauth/introspect", 400, good)[0]
    challenge = _answer(app, check, "POST", "/oauth/revoke", 401, good, **{"Cache-Control": "no-store"})
    assert "WWW-Authenticate" in challenge[0]


def test_only_operations_documenting_rfc_6749_errors_are_held_to_it(app: Any, check: AnswerCheck) -> None:
    not_found = {"error": {"code": "request.not_found", "message": "请求的资源不存在", "request_id": "r1"}}
    # The QR poll documents the project's error body (default), as the NUL guard answers.
    assert _answer(app, check, "GET", "/oauth/login/qr/%00", 404, not_found) == []
    oauth_body = {"error": "invalid_request"}
    [wrong] = _answer(
        app, check, "GET", "/oauth/login/qr/abc", 404, oauth_body, **{"Cache-Control": "no-store"}
    )
    assert "is not of type 'object'" in wrong or "required property" in wrong
    # A protocol endpoint's documented error statuses are RFC 6749's; what the app answers outside
    # the view (a body over the size limit) is its documented default, the project's error body.
    too_large = {"error": {"code": "request.too_large", "message": "请求体过大", "request_id": "r1"}}
    assert _answer(app, check, "POST", "/oauth/token", 413, too_large) == []
    assert "not an RFC 6749 error" in _answer(app, check, "POST", "/oauth/revoke", 400, not_found)[0]
