"""Journey endpoints of /api/v1: list, create by import, read and replace as export JSON, delete.

The body of POST and PUT, and the answer of GET, is the export JSON (webapp/services/journey_format.py);
GET answers CSV instead when the client prefers text/csv. GET sends an ETag; a PUT with If-Match
replaces only if nobody changed the journey since (else 412).
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request, url_for

from webapp.api import bp
from webapp.errors import api_error
from webapp.models import Journey, Role
from webapp.services import Actor, Conflict, NotFound, ServiceError, journeys


def actor() -> Actor:
    """The token's user (the session's current_user is nobody here), for history and ownership."""
    return Actor(g.api_identity.user.id, request.remote_addr)


def _refuse_viewers() -> Response | None:
    if not g.membership.role_enum.at_least(Role.EDITOR):
        return api_error(403, "Changing journeys needs the editor role; ask an admin of the organisation.")
    return None


def _journey_or_404(journey_id: int) -> Journey | None:
    try:
        return journeys.get_journey(journey_id)
    except NotFound:
        return None


def _body() -> tuple[Any, Response | None]:
    """The JSON body, or a 422 saying why there is none."""
    data = request.get_json(silent=True)
    if data is None:
        return None, api_error(
            422, "Send the journey as a JSON object in the export format (Content-Type: application/json)."
        )
    return data, None


def _summary(journey: Journey) -> dict[str, Any]:
    return {
        "id": journey.id,
        "title": journey.title,
        "kind": journey.kind,
        "state": journey.state,
        "status": journey.status,
        "tags": list(journey.tags or []),
        "persona": journey.persona.name if journey.persona else None,
        "owner": journey.owner.email if journey.owner else None,
        "archived": journey.archived_at is not None,
        "version": journey.version,
        "updated_at": journey.updated_at.isoformat(),
    }


def _export_response(journey_id: int) -> Response:
    export = journeys.export_json(journey_id)
    response = jsonify(export)
    response.set_etag(journeys.digest(export))
    return response


@bp.get("/journeys")
def list_journeys():
    """The organisation's journeys (filters: search, kind, state, status, tag, archived=true|false|all)."""
    archived_arg = (request.args.get("archived") or "false").lower()
    archived = {"false": False, "true": True, "all": None}.get(archived_arg, "bad")
    if archived == "bad":
        return api_error(422, "archived is true, false or all.")
    try:
        found = journeys.list_journeys(
            search=request.args.get("search"),
            kind=request.args.get("kind"),
            state=request.args.get("state"),
            status=request.args.get("status"),
            tag=request.args.get("tag"),
            archived=archived,
        )
    except ServiceError as error:
        return api_error(422, error.message)
    return {"journeys": [_summary(j) for j in found]}


@bp.post("/journeys")
def create_journey():
    """A new journey from export JSON (201 with its id)."""
    refused = _refuse_viewers()
    if refused:
        return refused
    data, error = _body()
    if error:
        return error
    try:
        journey = journeys.import_json(data, actor())
    except ServiceError as failure:
        return api_error(422, failure.message)
    return {"id": journey.id}, 201, {"Location": url_for("api.get_journey", journey_id=journey.id)}


@bp.get("/journeys/<int:journey_id>")
def get_journey(journey_id: int):
    """One journey as export JSON (with an ETag for a safe PUT), or as CSV when Accept prefers text/csv."""
    if _journey_or_404(journey_id) is None:
        return api_error(404, "No such journey.")
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        return Response(
            journeys.export_csv(journey_id),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="journey-{journey_id}.csv"'},
        )
    return _export_response(journey_id)


@bp.put("/journeys/<int:journey_id>")
def replace_journey(journey_id: int):
    """Replace a journey's content by export JSON; If-Match (its ETag) guards against lost updates."""
    refused = _refuse_viewers()
    if refused:
        return refused
    if _journey_or_404(journey_id) is None:
        return api_error(404, "No such journey.")
    data, error = _body()
    if error:
        return error
    expected = (
        next(iter(request.if_match), None) if request.if_match and not request.if_match.star_tag else None
    )
    try:
        journeys.replace_from_json(journey_id, data, actor(), expected_digest=expected)
    except NotFound:
        return api_error(404, "No such journey.")
    except Conflict as conflict:
        return api_error(412, conflict.message, "precondition_failed")
    except ServiceError as failure:
        return api_error(422, failure.message)
    return _export_response(journey_id)


@bp.delete("/journeys/<int:journey_id>")
def delete_journey(journey_id: int):
    """Delete a journey with everything in it (204)."""
    refused = _refuse_viewers()
    if refused:
        return refused
    try:
        journeys.delete_journey(journey_id, actor())
    except NotFound:
        return api_error(404, "No such journey.")
    return "", 204
