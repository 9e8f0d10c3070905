"""Placeholder blueprint (to be implemented)."""

from flask_smorest import Blueprint

blp = Blueprint("login", __name__, url_prefix="/v1/_login")
