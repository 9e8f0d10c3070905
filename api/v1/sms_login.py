"""Placeholder blueprint (to be implemented)."""

from flask_smorest import Blueprint

blp = Blueprint("sms_login", __name__, url_prefix="/v1/_sms_login")
