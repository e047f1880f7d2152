"""Improvement goals: KPIs tied to journeys, measurements, check-ins, initiatives. Under /o/<slug>/goals."""

from flask import Blueprint

bp = Blueprint("goals", __name__, url_prefix="/goals")

from webapp.goals import views  # noqa: E402,F401
