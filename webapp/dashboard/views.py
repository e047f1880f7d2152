"""Views of the executive dashboard (thin: parse, call one service, render)."""

from __future__ import annotations

from flask import render_template

from webapp.dashboard import bp


@bp.get("")
def index():
    """Every goal of the organisation, grouped by journey, for executives."""
    return render_template("dashboard/index.html")
