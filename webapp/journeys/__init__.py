"""The journey editor: list, map, inline edits, drag and drop, live updates, history. Under /o/<slug>/."""

from flask import Blueprint

bp = Blueprint("journeys", __name__, url_prefix="/journeys")

import webapp.journeys.export_views  # noqa: E402,F401
from webapp.journeys import views  # noqa: E402,F401
