"""Request bodies as JSON, with a bound on nesting.

`json.loads` of ~100 KB of `[[[[…` (well under the body limit) raises RecursionError, which
neither Flask nor webargs treats as bad JSON: every JSON endpoint answered 500. Shallower but
still absurd nesting would reach the recursive walks further in (merge patch, text checks).
Nothing a client sends legitimately nests deeper than MAX_DEPTH (a catalog item document with
its form schema is the deepest, about 15), so a deeper body is malformed JSON: a 400 in the
error format (`request.malformed_json`), nothing read further.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

MAX_DEPTH = 64


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than `limit` levels (iterative: any depth)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads(text: str | bytes) -> Any:
    """`json.loads`, refusing nesting deeper than MAX_DEPTH with json.JSONDecodeError."""
    doc = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", doc[:100], 0) from None
    if too_deep(value):
        raise json.JSONDecodeError(f"nested more than {MAX_DEPTH} levels", doc[:100], 0)
    return value


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading with `loads` above (request.get_json and every other reader)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class BoundedParser(FlaskParser):
    """webargs' Flask parser (flask-smorest's argument loading), reading with `loads` above."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(
                f"Bytes decoding error : {exc.reason}", doc="-", pos=exc.start
            ) from exc
        return loads(text)
