"""The executive dashboard and the journey portfolio. Under /o/<slug>/dashboard."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

from webapp.dashboard import views  # noqa: E402,F401
