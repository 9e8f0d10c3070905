"""Swagger UI assets served locally, so /docs works on a network without a CDN."""

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
