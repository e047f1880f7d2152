"""Data-vs-story endpoints of /api/v1: a journey's activity mapping for a log, and its measurements.

PUT .../mapping links the log when it is not linked yet, saves a new mapping version when it differs,
and queues the measurement; GET .../measurements answers from the stored snapshot (409 while the
first one is still being computed).
"""

from __future__ import annotations

from flask import g, request

from webapp.api import bp
from webapp.api.journeys import actor
from webapp.errors import api_error
from webapp.models import Role
from webapp.services import NotFound, ServiceError, journeys
from webapp.services import overlay as service


def _journey_missing(journey_id: int) -> bool:
    try:
        journeys.get_journey(journey_id)
    except NotFound:
        return True
    return False


@bp.put("/journeys/<int:journey_id>/mapping")
def put_mapping(journey_id: int):
    """Body {"event_log": ID, "activities": {"activity": "step name or id"}} -> the saved mapping."""
    if _journey_missing(journey_id):
        return api_error(404, "No such journey.")
    if not g.membership.role_enum.at_least(Role.EDITOR):
        return api_error(403, "Changing a mapping needs the editor role; ask an admin of the organisation.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("event_log"), int):
        return api_error(
            422, 'Send {"event_log": <id>, "activities": {"activity name": "step name or id"}} as JSON.'
        )
    try:
        link = service.link_log(journey_id, body["event_log"], actor())
        version = service.save_mapping(journey_id, link.id, body.get("activities") or {}, actor())
        return service.mapping_json(link, version)
    except NotFound as error:
        return api_error(404, error.message)
    except ServiceError as error:
        return api_error(422, error.message)


@bp.get("/journeys/<int:journey_id>/measurements")
def get_measurements(journey_id: int):
    """The journey measured on one linked log: conformance, steps, transitions, unmapped activities."""
    if _journey_missing(journey_id):
        return api_error(404, "No such journey.")
    event_log = request.args.get("event_log", type=int)
    if event_log is None:
        return api_error(422, "Say which log: ?event_log=<id>.")
    try:
        return service.measurements_json(journey_id, event_log)
    except NotFound as error:
        return api_error(404, error.message)
    except ServiceError as error:
        return api_error(409, error.message)
