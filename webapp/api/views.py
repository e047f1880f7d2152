"""API endpoints."""

from __future__ import annotations

from flask import g, jsonify, request

from webapp.api import bp
from webapp.api.openapi import document
from webapp.errors import api_error


@bp.get("/me")
def me():
    """Who the token speaks for."""
    identity = g.api_identity
    return {
        "user": {"email": identity.user.email},
        "organisation": {"slug": identity.organisation.slug, "name": identity.organisation.name},
        "role": identity.membership.role,
    }


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI document of this API."""
    return document(request.host_url)


def _require_editor():
    from webapp.models import Role

    if not g.membership.role_enum.at_least(Role.EDITOR):
        return api_error(403, "Uploading logs needs the editor role.")
    return None


def _log_or_404(log_id: int):
    from webapp.services import NotFound, eventlogs

    try:
        return eventlogs.get(log_id)
    except NotFound:
        return None


def _summary_json(results) -> dict | None:
    if results is None:
        return None
    s = results.summary
    return {
        "cases": s.cases,
        "events": s.events,
        "activities": s.activities,
        "variants": s.variants,
        "start": s.first_timestamp.isoformat() if s.first_timestamp else None,
        "end": s.last_timestamp.isoformat() if s.last_timestamp else None,
        "case_duration_s": {
            "mean": s.case_duration_mean_s,
            "median": s.case_duration_median_s,
            "p90": s.case_duration_p90_s,
        },
    }


def _log_json(log) -> dict:
    from webapp.services import eventlogs

    run = eventlogs.latest_run(log)
    gave_way = eventlogs.gave_way(run)
    return {
        "id": log.id,
        "name": log.name,
        "status": log.status,
        "progress": 100 if log.status == "finished" else (run.progress if run else 0),
        "phase": run.phase if run else None,
        "paused_s": gave_way.paused_s if gave_way else None,
        "error": log.error,
        "duplicate_of": log.duplicate_of_id,
        "summary": _summary_json(eventlogs.results(log, variant_limit=0, unfiltered=True)),
    }


@bp.post("/event-logs")
def upload_event_log():
    """Upload a log (multipart); with a complete mapping, or an XES file, mining starts at once (202)."""
    from flask import current_app

    from webapp.services import ServiceError, eventlogs
    from webapp.views import actor

    refused = _require_editor()
    if refused:
        return refused
    request.max_content_length = current_app.config["MAX_UPLOAD_BYTES"] + 1024 * 1024
    file = request.files.get("file")
    if file is None:
        return api_error(400, "Send the log as a multipart field named 'file'.")
    try:
        log = eventlogs.upload(file.filename or "", file.stream, actor(), request.form.get("name"))
    except ServiceError as error:
        return api_error(413 if "larger than the limit" in error.message else 422, error.message)
    mapping = {role: request.form.get(f"{role}_column") for role in eventlogs.MAPPING_ROLES}
    mapping["timestamp_format"] = request.form.get("timestamp_format")
    mapping["timezone"] = request.form.get("timezone")
    if any(mapping.get(role) for role in eventlogs.MAPPING_ROLES):
        try:
            eventlogs.set_pending_mapping(log, mapping)
        except ServiceError as error:
            return api_error(422, error.message)
    answer = {"id": log.id, "status": log.status}
    if getattr(log, "queue_paused", None):
        answer["message"] = log.queue_paused
    return answer, 202


@bp.get("/event-logs")
def list_event_logs():
    """The organisation's logs, newest first."""
    from webapp.services import eventlogs

    return {"event_logs": [_log_json(log) for log in eventlogs.all_logs()]}


@bp.get("/event-logs/<int:log_id>")
def get_event_log(log_id: int):
    """One log: status, progress, error and summary."""
    log = _log_or_404(log_id)
    if log is None:
        return api_error(404, "No such event log.")
    return _log_json(log)


def _results_or_error(log_id: int):
    from webapp.services import eventlogs

    log = _log_or_404(log_id)
    if log is None:
        return None, api_error(404, "No such event log.")
    results = eventlogs.results(log, unfiltered=True)
    if results is None:
        return None, api_error(
            409, f"The log is {log.status}; results exist once mining has finished.", "not_ready"
        )
    return results, None


@bp.get("/event-logs/<int:log_id>/dfg")
def get_dfg(log_id: int):
    """The directly-follows graph with frequency and waiting times."""
    results, error = _results_or_error(log_id)
    if error:
        return error
    return results.dfg_json()


@bp.get("/event-logs/<int:log_id>/variants")
def get_variants(log_id: int):
    """The most frequent variants (limit: default 100, at most 1000)."""
    results, error = _results_or_error(log_id)
    if error:
        return error
    limit = max(1, min(1000, request.args.get("limit", 100, type=int)))
    return jsonify(
        [
            {
                "activities": v.activities,
                "cases": v.cases,
                "share": v.share,
                "median_duration_s": v.median_duration_s,
            }
            for v in results.variants[:limit]
        ]
    )


@bp.get("/event-logs/<int:log_id>/activities")
def get_activities(log_id: int):
    """Per-activity event and case counts."""
    results, error = _results_or_error(log_id)
    if error:
        return error
    return jsonify([{"name": a.activity, "events": a.events, "cases": a.cases} for a in results.activities])
