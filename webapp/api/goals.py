"""Goal endpoints of /api/v1: set a goal, list and read goals with their measurements, add a measurement
of a manual KPI (409 for a KPI measured automatically from logs or surveys)."""

from __future__ import annotations

from typing import Any

from flask import g, request, url_for

from webapp.api import bp
from webapp.api.journeys import actor
from webapp.errors import api_error
from webapp.models import Role
from webapp.services import NotFound, ServiceError
from webapp.services import goals as service

GOAL_FIELDS = {
    "title",
    "why",
    "journey_id",
    "step_id",
    "kpi",
    "direction",
    "baseline",
    "target",
    "start",
    "due",
}
GOAL_FIELDS |= {"owner_email", "review_every_days"}


def _refuse_viewers(what: str):
    if not g.membership.role_enum.at_least(Role.EDITOR):
        return api_error(403, f"{what} needs the editor role; ask an admin of the organisation.")
    return None


def _json_object() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _goal_json(goal) -> dict[str, Any]:
    return service.goal_json(goal, service.measurements(goal.id))


@bp.post("/goals")
def create_goal():
    """A new goal (201 with its id); a measured KPI gets its first measurement at once."""
    refused = _refuse_viewers("Setting goals")
    if refused:
        return refused
    body = _json_object()
    if body is None:
        return api_error(
            422,
            'Send the goal as a JSON object: {"title", "journey_id", "kpi": {"metric", "source"}, '
            '"direction", "target", "start", "due", "owner_email"}.',
        )
    unknown = sorted(set(body) - GOAL_FIELDS)
    if unknown:
        return api_error(422, f"Unknown fields: {', '.join(unknown)}.")
    kpi = body.get("kpi")
    if not isinstance(kpi, dict):
        return api_error(
            422, '"kpi" is an object: {"metric", "source": "event_log"|"survey"|"manual", "unit"?}.'
        )
    for name in ("journey_id", "step_id"):
        if body.get(name) is not None and (not isinstance(body[name], int) or isinstance(body[name], bool)):
            return api_error(422, f'"{name}" is an integer id.')
    fields = {
        "title": body.get("title"),
        "why": body.get("why"),
        "journey_id": body.get("journey_id"),
        "step_id": body.get("step_id"),
        "kpi_metric": kpi.get("metric"),
        "kpi_source": kpi.get("source"),
        "kpi_unit": kpi.get("unit"),
        "direction": body.get("direction"),
        "baseline": body.get("baseline"),
        "target": body.get("target"),
        "start_on": body.get("start"),
        "due_on": body.get("due"),
        "review_every_days": body.get("review_every_days"),
        "owner_email": body.get("owner_email"),
    }
    if not isinstance(fields["owner_email"], str):
        return api_error(422, '"owner_email" names the owner: a member with the editor role or above.')
    try:
        goal = service.create_goal(fields, actor())
    except ServiceError as error:
        return api_error(422, error.message)
    return {"id": goal.id}, 201, {"Location": url_for("api.get_goal", goal_id=goal.id)}


@bp.get("/goals")
def list_goals():
    """The organisation's goals with their measurements (filters: status, journey_id, owner_email)."""
    owner_id = None
    owner_email = (request.args.get("owner_email") or "").strip().lower()
    if owner_email:
        owner = next((u for u in service.members() if u.email == owner_email), None)
        if owner is None:
            return {"goals": []}
        owner_id = owner.id
    try:
        found = service.list_goals(
            status=request.args.get("status") or None,
            journey_id=request.args.get("journey_id", type=int),
            owner_id=owner_id,
        )
    except ServiceError as error:
        return api_error(422, error.message)
    rows = service.measurements_of(goal.id for goal in found)
    return {"goals": [service.goal_json(goal, rows[goal.id]) for goal in found]}


@bp.get("/goals/<int:goal_id>")
def get_goal(goal_id: int):
    """One goal: baseline, current, progress, expected, status and measurements."""
    try:
        goal = service.get_goal(goal_id)
    except NotFound:
        return api_error(404, "No such goal.")
    return _goal_json(goal)


@bp.post("/goals/<int:goal_id>/measurements")
def add_measurement(goal_id: int):
    """A measurement of a manual KPI {"at", "value", "note"?} (201 with the recomputed goal)."""
    try:
        service.get_goal(goal_id)
    except NotFound:
        return api_error(404, "No such goal.")
    refused = _refuse_viewers("Adding measurements")
    if refused:
        return refused
    body = _json_object()
    if body is None or "value" not in body or "at" not in body:
        return api_error(422, 'Send {"at": "2026-03-31T17:00:00Z", "value": 42, "note": "…"} as JSON.')
    if body.get("note") is not None and not isinstance(body["note"], str):
        return api_error(422, '"note" is text.')
    if isinstance(body["value"], str | bool) or body["value"] is None:
        return api_error(422, '"value" is a number.')
    try:
        service.record_manual(goal_id, body["at"], body["value"], body.get("note") or "", actor())
    except NotFound:
        return api_error(404, "No such goal.")
    except service.AutomaticKpi as error:
        return api_error(409, error.message, "measured_automatically")
    except ServiceError as error:
        return api_error(422, error.message)
    return _goal_json(service.get_goal(goal_id)), 201, {"Location": url_for("api.get_goal", goal_id=goal_id)}
