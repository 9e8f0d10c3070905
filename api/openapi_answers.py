"""Success answers in the OpenAPI document for views that write their own Response (cached
JSON, CSV, Prometheus text, an event stream) or answer without a response schema: a client
generated from the document still learns the status, the media type and the shape."""

from __future__ import annotations

from typing import Any

OBJECT: dict[str, Any] = {"type": "object"}


def json_answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON answer (`responses={200: json_answer(...)}` in `@blp.doc`)."""
    return {"description": description, "content": {"application/json": {"schema": schema or OBJECT}}}


def text_answer(description: str, media_type: str) -> dict[str, Any]:
    """A text answer (CSV, Prometheus exposition, an event stream, a file)."""
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def file_answer(description: str, *media_types: str) -> dict[str, Any]:
    """A file answered in one of `media_types` (a certificate, an attachment)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"description": description, "content": dict.fromkeys(media_types, binary)}


# Building blocks of those shapes (OpenAPI 3.0: a null is `nullable: true`, never a type list).
STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
NULLABLE_STRING: dict[str, Any] = {"type": "string", "nullable": True}
NULLABLE_INTEGER: dict[str, Any] = {"type": "integer", "nullable": True}


def object_of(**properties: dict[str, Any]) -> dict[str, Any]:
    """An object with these properties."""
    return {"type": "object", "properties": properties}


def array_of(items: dict[str, Any] = OBJECT) -> dict[str, Any]:
    """An array of `items` (objects unless named)."""
    return {"type": "array", "items": items}
