"""Request bodies as JSON: standard JSON only, with a bound on nesting.

`json.loads` of ~100 KB of `[[[[…` (well under the body limit) raises RecursionError, which
neither Flask nor webargs treats as bad JSON: every JSON endpoint answered 500. Shallower but
still absurd nesting would reach the recursive walks further in (merge patch, text checks).
Nothing a client sends legitimately nests deeper than MAX_DEPTH (a catalog item document with
its form schema is the deepest, about 15), so a deeper body is malformed JSON: a 400 in the
error format (`request.malformed_json`), nothing read further. Likewise NaN, Infinity and
numbers beyond a double (Python's json takes them, PostgreSQL's JSON columns do not), and
strings holding a lone surrogate (no text column can store them): refused here, once, instead
of as a database error deep in some write.

A body may open with one UTF-8 byte-order mark (Windows/.NET and older Android HTTP stacks of
third-party apps send one): it says nothing of the value, and RFC 8259 lets a reader ignore it,
so `loads` drops it (Python's json refuses it in text). Other encodings stay refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from api.errors import RepeatedParameter

MAX_DEPTH = 64
BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark


def without_bom(data: bytes) -> bytes:
    """The body without one leading UTF-8 byte-order mark."""
    return data[3:] if data.startswith(BOM) else data


# Text no database column can hold: lone UTF-16 surrogates ("\ud800" is valid JSON, but not
# encodable as UTF-8). Bodies read through a schema (webargs) keep them: the schema names the
# field (422), as it does for NUL and every other control character. Bodies read without one
# (request.get_json: callbacks, receipts) refuse them here; NUL there is refused by the reader
# (a province event: domain.forwarding.events.validate) or else by PostgreSQL, which the API
# answers as a 400 (api/errors.py).
_UNSTORABLE = re.compile("[\ud800-\udfff]")


def problem(value: Any, limit: int = MAX_DEPTH, *, text: bool = True) -> str | None:
    """Why a parsed body cannot be taken: arrays and objects nested more than `limit` levels,
    or (`text`) a string, value or key, no database can store; None when it is fine. Iterative."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if text and _UNSTORABLE.search(node):
                return "a string holds a lone surrogate"
            continue
        if isinstance(node, dict):
            children: Any = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return f"nested more than {limit} levels"
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, str)))
    return None


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's extension, not the standard


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: PostgreSQL's JSON and every other reader refuse it
        raise ValueError("number out of range")
    return value


def loads(text: str | bytes, *, schema_reads: bool = False) -> Any:
    """Standard JSON only (no NaN or Infinity, finite numbers), nesting at most MAX_DEPTH and,
    unless a schema reads the body (`schema_reads`: it names the field), no lone surrogate in a
    string; anything else raises json.JSONDecodeError. Bytes are UTF-8 (RFC 8259; Python's
    json would guess UTF-16 and UTF-32 from them); one leading UTF-8 byte-order mark is dropped
    (a body of only that is an empty body)."""
    if isinstance(text, bytes):
        try:
            text = without_bom(text).decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not UTF-8", text) from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:
        raise _malformed("nested too deeply", text) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise _malformed(str(exc), text) from None
    why = problem(value, text=not schema_reads)
    if why is not None:
        raise _malformed(why, text)
    return value


def _malformed(why: str, text: str | bytes) -> json.JSONDecodeError:
    head = text[:100] if isinstance(text, str) else text[:100].decode("utf-8", errors="replace")
    return json.JSONDecodeError(why, head or "-", 0)  # never "": webargs reads "" as no body


def read_by_hand(view: Any) -> Any:
    """Marks a view that reads its body itself (request.get_json / get_data) and answers a body
    it cannot read in its own terms (a callback's platform.bad_event): the middleware then
    leaves a malformed JSON body to it instead of refusing it first."""
    view._yiwang_reads_body = True
    return view


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading with `loads` above (request.get_json and every other reader)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class BoundedParser(FlaskParser):
    """webargs' Flask parser (flask-smorest's argument loading and pagination), reading with
    `loads` above, and refusing a query parameter given twice that the schema takes once."""

    def load_querystring(self, req: Any, schema: Any) -> Any:
        """The query as webargs reads it (a list for List fields, else the first value), once a
        declared single-valued parameter is known not to be repeated (400 naming it). Parameters
        the schema does not declare are left to it (webargs ignores them in a query)."""
        proxy = self._makeproxy(req.args, schema)
        if req.query_string:
            for name, values in req.args.lists():
                if len(values) > 1 and name not in proxy.multiple_keys and _declared(schema, name):
                    raise RepeatedParameter(name=name)
        return proxy

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
        return loads(text, schema_reads=True)


def _declared(schema: Any, name: str) -> bool:
    return any((f.data_key or n) == name for n, f in schema.fields.items())
