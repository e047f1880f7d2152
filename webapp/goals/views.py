"""Views of goals (thin: parse, call one service, render)."""

from __future__ import annotations

from flask import render_template

from webapp.goals import bp


@bp.get("")
def index():
    """The organisation's goals."""
    return render_template("goals/index.html")
