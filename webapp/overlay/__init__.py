"""Data vs story: a journey's links to mined logs, the activity mapping, the measured overlay (/o/<slug>/)."""

from flask import Blueprint

bp = Blueprint("overlay", __name__)

from webapp.overlay import views  # noqa: E402,F401
