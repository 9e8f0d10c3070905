"""Every answer a test gets from the app is checked against the served OpenAPI document.

A client generated from the document reads answers by it: a field it does not name, a type it
gets wrong, a status or media type it does not list is a defect even when the test's own
assertions pass. `tests/conftest.py` connects an `AnswerCheck` to the session's app; the test
during which an answer differed fails at its teardown with what differed.

Checked, for each operation of the document (test-only routes and the viewer's assets are not
in it): a success status the operation lists, with a media type it lists for it; a JSON body
valid against the documented schema, with no field the schema leaves out where it lists its
fields; a 204 without a Content-Type; an error body in the error format the operation documents
for that status (or its `default`), its message and field messages in Chinese unless the client
asked for English; where that format is RFC 6749's (components.schemas.OAuthError: the OAuth
protocol endpoints), a known OAuth error code, no-store, and a challenge with a 401. Not
checked: answers the catalog fast path serves before Flask, and bodies that are streamed or
files.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from typing import Any

import jsonschema
from flask import Flask, request, request_finished

from api.i18n import language
from tests.api.openapi_schema import strict_schema

_RULE_ARGUMENT = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


class AnswerCheck:
    """Collects how the app's answers differ from its OpenAPI document (`take` empties it)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._spec: dict | None = None
        self._validators: dict[tuple[str, str, str, str], Any] = {}
        self._found: list[str] = []
        self._lock = threading.Lock()

    def connect(self) -> None:
        request_finished.connect(self._finished, self.app, weak=False)

    def take(self) -> list[str]:
        with self._lock:
            found, self._found = self._found, []
        return found

    def _spec_dict(self) -> dict:
        if self._spec is None:
            api = self.app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
            self._spec = json.loads(json.dumps(api.spec.to_dict()))
        return self._spec

    def _validator(self, method: str, path: str, status: str, schema: dict) -> Any:
        key = (method, path, status, json.dumps(schema, sort_keys=True))
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft4Validator(strict_schema(self._spec_dict(), schema))
        return self._validators[key]

    def _finished(self, sender: Flask, response: Any, **_: Any) -> None:
        rule = request.url_rule
        if rule is None:
            return
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        method = request.method.lower()
        operation = self._spec_dict()["paths"].get(path, {}).get(method)
        if operation is None:
            return
        problem = self._problem(operation, path, method, response)
        if problem is not None:
            with self._lock:
                self._found.append(f"{method.upper()} {request.path} → {response.status_code}: {problem}")

    def _documents_rfc6749(self, operation: dict, status: int) -> bool:
        """Whether the operation documents this error status in RFC 6749's format (the protocol
        endpoints: /oauth/token, /oauth/revoke, /oauth/introspect). The sign-in pages and the QR
        poll, and anything a protocol endpoint answers outside its view (a body over the limit),
        document the project's error body, and are checked as every other answer is."""
        documented = operation["responses"].get(str(status)) or operation["responses"].get("default") or {}
        if "$ref" in documented:
            documented = self._spec_dict()["components"]["responses"][documented["$ref"].rsplit("/", 1)[-1]]
        schema = ((documented.get("content") or {}).get("application/json") or {}).get("schema") or {}
        return schema.get("$ref", "").rsplit("/", 1)[-1] == "OAuthError"

    def _problem(self, operation: dict, path: str, method: str, response: Any) -> str | None:
        status = response.status_code
        if status == 204:
            if "Content-Type" in response.headers:  # (its body, if any, Werkzeug never sends)
                return "a 204 with a Content-Type"
            return None
        ok = 200 <= status < 300
        if not ok and status < 400:
            return None  # redirects
        if not ok and self._documents_rfc6749(operation, status):
            return _not_rfc6749(response)
        if status == 401 and operation.get("security") and "WWW-Authenticate" not in response.headers:
            return "a 401 of a bearer-protected operation without WWW-Authenticate (RFC 6750 3)"
        documented = operation["responses"].get(str(status))
        if documented is None and not ok:
            documented = operation["responses"].get("default")
        if documented is None:
            return f"status not documented (documented: {sorted(operation['responses'])})"
        if "$ref" in documented:  # a shared response (components.responses)
            documented = self._spec_dict()["components"]["responses"][documented["$ref"].rsplit("/", 1)[-1]]
        content = documented.get("content") or {}
        if response.mimetype not in {media.split(";")[0].strip() for media in content}:
            return f"media type {response.mimetype} not documented (documented: {sorted(content)})"
        if response.mimetype != "application/json" or response.is_streamed or response.direct_passthrough:
            return None
        raw = response.get_data()
        if response.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        schema = content["application/json"].get("schema")
        if schema is None:
            return None
        validator = self._validator(method, path, str(status), schema)
        body = json.loads(raw)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            return "; ".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:3])
        if not ok and language() == "zh":
            return _not_chinese(body["error"])
        return None


_CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _texts(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def _not_chinese(error: dict) -> str | None:
    """An error's message and field messages a citizen reading Chinese could not read."""
    texts = [error["message"], *_texts(error.get("fields") or {})]
    foreign = [t for t in texts if not _CHINESE.search(t)]
    return f"messages not in Chinese: {foreign[:3]}" if foreign else None


# RFC 6749 5.2 (and RFC 7009, RFC 8628's slow_down, RFC 6750 for a bearer token): the error codes
# an OAuth endpoint may answer with.
_OAUTH_ERRORS = {
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
    "invalid_scope", "unsupported_token_type", "access_denied", "server_error", "temporarily_unavailable",
    "slow_down", "invalid_token", "insufficient_scope",
}  # fmt: skip


def _not_rfc6749(response: Any) -> str | None:
    """An OAuth endpoint's JSON error outside RFC 6749 5.2: an unknown `error`, a cacheable answer,
    or a 401 without its WWW-Authenticate challenge. Pages (HTML) are for citizens, not checked."""
    if response.mimetype != "application/json" or response.is_streamed or response.status_code >= 500:
        return None  # pages are for citizens; a failure of ours answers in the error format
    body = json.loads(response.get_data())
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, str) or error not in _OAUTH_ERRORS:
        return f"not an RFC 6749 error: {str(body)[:200]}"
    if "no-store" not in (response.headers.get("Cache-Control") or ""):
        return "an OAuth error without Cache-Control: no-store"
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        return "a 401 without WWW-Authenticate (RFC 6749 5.2)"
    return None
