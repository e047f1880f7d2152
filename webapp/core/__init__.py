"""The landing page, health checks and the organisation switcher."""

from flask import Blueprint

bp = Blueprint("core", __name__, template_folder="../templates")

from webapp.core import views  # noqa: E402,F401
