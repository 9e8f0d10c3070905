"""A component of the served OpenAPI document as a plain JSON Schema, for jsonschema.validate."""

from __future__ import annotations

from typing import Any


def resolved(spec: dict, name: str) -> dict:
    """components.schemas[name] with every $ref replaced by the schema it names."""
    schemas = spec["components"]["schemas"]

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(schemas[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schemas[name])


def answer_schema(spec: dict, method: str, path: str, status: str = "200") -> dict:
    """The documented JSON body of an operation's answer, every $ref replaced by what it names."""
    schemas = spec["components"]["schemas"]

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(schemas[node["$ref"].rsplit("/", 1)[-1]])
            out = {k: resolve(v) for k, v in node.items() if k != "nullable"}
            if node.get("nullable") and "type" in out:  # OpenAPI 3.0's null, as JSON Schema says it
                out["type"] = [out["type"], "null"]
            return out
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"])
