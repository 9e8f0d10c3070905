"""Swagger UI assets served locally, so /docs works on a network without a CDN.

A plain Flask blueprint, deliberately left out of the OpenAPI document: these are the static
files of the documentation viewer itself (like /docs and /openapi.json), not an operation any
integrator calls (tests/api/test_openapi_coverage.py lists it as such)."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory

bp = Blueprint("docs_assets", __name__, url_prefix="/docs/assets")


@bp.route("/<path:filename>")
def asset(filename: str) -> Response:
    """A static file of the bundled Swagger UI."""
    import swagger_ui_bundle

    resp = send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp
