"""Event logs: upload, map columns, watch mining, see the process. Nested under /o/<org_slug>/."""

from flask import Blueprint

bp = Blueprint("eventlogs", __name__, url_prefix="/eventlogs")

from webapp.eventlogs import views  # noqa: E402,F401
