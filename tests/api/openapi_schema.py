"""Parts of the served OpenAPI document as plain JSON Schemas, for jsonschema.validate."""

from __future__ import annotations

from typing import Any


def _plain(spec: dict, node: Any, strict: bool = False) -> Any:
    """`node` with every $ref replaced by the schema it names, and OpenAPI 3.0's
    `nullable: true` written as JSON Schema says it (a type list with "null"). `strict`: an object
    that lists its properties is closed to others (an allOf of such objects merged first)."""
    schemas = spec["components"]["schemas"]
    if isinstance(node, list):
        return [_plain(spec, v, strict) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _plain(spec, schemas[node["$ref"].rsplit("/", 1)[-1]], strict)
    parts = [_plain(spec, p, strict) for p in node.get("allOf", [])] if strict else []
    if parts and all(part.get("type") == "object" for part in parts):
        merged: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
        for part in parts:
            merged["properties"] |= part.get("properties", {})
            merged["required"] = sorted({*merged.get("required", []), *part.get("required", [])})
        return merged
    out = {k: _plain(spec, v, strict) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if strict and "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def strict_schema(spec: dict, schema: dict) -> dict:
    """`schema` (part of the document) as a plain JSON Schema that refuses undocumented fields."""
    return _plain(spec, schema, strict=True)


def resolved(spec: dict, name: str) -> dict:
    """components.schemas[name] as a plain JSON Schema."""
    return _plain(spec, spec["components"]["schemas"][name])


def answer_schema(spec: dict, method: str, path: str, status: str = "200") -> dict:
    """The documented JSON body of an operation's answer as a plain JSON Schema."""
    answer = spec["paths"][path][method]["responses"][status]
    return _plain(spec, answer["content"]["application/json"]["schema"])
