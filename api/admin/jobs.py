"""Placeholder blueprint (to be implemented)."""

from flask_smorest import Blueprint

blp = Blueprint("jobs", __name__, url_prefix="/admin/v1/jobs")
