"""Marks that decorators leave on views (public, scope, cached reads, idempotent), read per request."""

from __future__ import annotations

from typing import Any

from flask import current_app, request


def view_attr(name: str) -> Any:
    """An attribute of this request's view function (or its MethodView method), else None."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    known = app.extensions.setdefault("yiwang.view_attrs", {})  # views do not change once built
    key = (request.endpoint or "", request.method, name)
    try:
        return known[key]
    except KeyError:
        pass
    view = app.view_functions.get(request.endpoint or "")
    value = None
    if view is not None:
        cls = getattr(view, "view_class", None)
        if cls is not None:
            method = getattr(cls, request.method.lower(), None)
            value = getattr(method, name, None) or getattr(cls, name, None)
        else:
            value = getattr(view, name, None)
    known[key] = value
    return value
