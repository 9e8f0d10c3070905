"""Parts of the served OpenAPI document as plain JSON Schemas, for jsonschema.validate."""

from __future__ import annotations

from typing import Any


def _plain(spec: dict, node: Any) -> Any:
    """`node` with every $ref replaced by the schema it names, and OpenAPI 3.0's
    `nullable: true` written as JSON Schema says it (a type list with "null")."""
    schemas = spec["components"]["schemas"]
    if isinstance(node, dict):
        if "$ref" in node:
            return _plain(spec, schemas[node["$ref"].rsplit("/", 1)[-1]])
        out = {k: _plain(spec, v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_plain(spec, v) for v in node]
    return node


def resolved(spec: dict, name: str) -> dict:
    """components.schemas[name] as a plain JSON Schema."""
    return _plain(spec, spec["components"]["schemas"][name])


def answer_schema(spec: dict, method: str, path: str, status: str = "200") -> dict:
    """The documented JSON body of an operation's answer as a plain JSON Schema."""
    answer = spec["paths"][path][method]["responses"][status]
    return _plain(spec, answer["content"]["application/json"]["schema"])
