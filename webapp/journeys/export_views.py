"""PDF and PNG exports of a journey map: start one (any member may), watch its progress, download it.

Chromium renders the map in a worker (worker/jobs/exports.py, enqueued by dotted path so the web process
never imports it). The RQ job's meta is the record: its organisation, journey and format, the phase and
progress, and the storage key of the file or the reason it failed. A job is only ever shown under the URL
of its own organisation and journey; any other URL gets the same 404 as a job that does not exist.
"""

from __future__ import annotations

import io
import re

from flask import abort, g, redirect, request, send_file, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job
from werkzeug.utils import secure_filename

from webapp import queue
from webapp.journeys import bp
from webapp.services import NotFound
from webapp.services import journeys as service
from webapp.views import render

JOB_PATH = "worker.jobs.exports.render_journey"
FORMATS = {"pdf": ("application/pdf", "PDF"), "png": ("image/png", "PNG")}
EXPORT_TIMEOUT_S = 180
JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
ACTIVE = {"queued", "started", "deferred", "scheduled"}


def _journey(journey_id: int):
    try:
        return service.get_journey(journey_id)
    except NotFound:
        abort(404)


def _job(journey_id: int, job_id: str):
    """The export job of this organisation's journey, else 404 (missing, foreign and mismatched alike)."""
    journey = _journey(journey_id)
    if not JOB_ID.fullmatch(job_id):
        abort(404)
    try:
        job = Job.fetch(job_id, connection=queue.redis_connection())
        meta = job.meta or {}
        # The journey is in the job's arguments from the start; the meta repeats it once it is saved.
        journey_of_job = meta.get("journey_id", job.args[0] if job.args else None)
        ours = (
            job.func_name == JOB_PATH
            and meta.get("organisation_id") == g.organisation.id
            and journey_of_job == journey.id
        )
    except (NoSuchJobError, DeserializationError):
        ours = False
    if not ours:
        abort(404)
    return journey, job


def _state(job) -> dict:
    """What the widget shows: queued, running, done (with the file) or failed (with the reason)."""
    meta = job.meta or {}
    status = job.get_status(refresh=False)
    status = getattr(status, "value", status)
    fmt = meta.get("format") or (job.args[1] if len(job.args) > 1 else "pdf")
    state = {
        "job_id": job.id,
        "format": fmt,
        "label": FORMATS.get(fmt, ("", fmt.upper()))[1],
        "phase": meta.get("phase") or "waiting",
        "progress": int(meta.get("progress") or 0),
        "error": meta.get("error"),
        "size_bytes": meta.get("size_bytes"),
    }
    if status == "finished" and meta.get("storage_key"):
        state["state"] = "done"
    elif status in ACTIVE and not meta.get("error"):
        state["state"] = "queued" if status != "started" else "running"
    else:
        state["state"] = "failed"
        if not state["error"]:
            state["error"] = (
                "The export stopped before it finished (the worker may have been restarted). Try again."
            )
    return state


def _widget(journey, export: dict, status: int = 200):
    body = render(
        "journeys/_export_status.html", "journeys/_export_status.html", journey=journey, export=export
    )
    body.status_code = status
    return body


@bp.post("/<int:journey_id>/exports")
def start_export(journey_id: int):
    """Queue a PDF or PNG export of the map (fmt=pdf|png) and answer the widget that watches it."""
    journey = _journey(journey_id)
    fmt = request.form.get("fmt", "")
    if fmt not in FORMATS:
        abort(400, description="Choose PDF or PNG as the export format.")
    try:
        job = queue.enqueue(
            "default",
            JOB_PATH,
            journey.id,
            fmt,
            current_user.id,
            organisation_id=g.organisation.id,
            description=f"export journey {journey.id} as {fmt}",
            job_timeout=EXPORT_TIMEOUT_S,
            retries=0,  # a failure (no Chromium, say) would fail again; the widget offers to retry
        )
        job.meta.update(journey_id=journey.id, format=fmt, requested_by=current_user.id)
        job.save_meta()
    except (queue.RedisNotConfigured, RedisError):
        export = {
            "job_id": "",
            "format": fmt,
            "label": FORMATS[fmt][1],
            "state": "failed",
            "error": "The background queue (Redis) cannot be reached, so nothing was exported. "
            "Try again in a minute; if it persists, tell an administrator.",
        }
        return _widget(journey, export)
    if not request.headers.get("HX-Request"):
        return redirect(url_for("orgs.journeys.export_status", journey_id=journey.id, job_id=job.id), 303)
    return _widget(journey, _state(job), 202)


@bp.get("/<int:journey_id>/exports/<job_id>")
def export_status(journey_id: int, job_id: str):
    """The export's progress; once done, the download link (htmx polls this every second)."""
    journey, job = _job(journey_id, job_id)
    return _widget(journey, _state(job))


@bp.get("/<int:journey_id>/exports/<job_id>/file")
def export_file(journey_id: int, job_id: str):
    """The exported PDF or PNG, as a download."""
    journey, job = _job(journey_id, job_id)
    export = _state(job)
    key = (job.meta or {}).get("storage_key") or ""
    if export["state"] != "done" or not key.startswith(f"org-{g.organisation.id}/exports/"):
        abort(404)
    from webapp.storage import get_storage

    try:
        with get_storage().local_path(key) as path:
            data = path.read_bytes()
    except FileNotFoundError:
        abort(404)
    fmt = export["format"]
    name = secure_filename(journey.title) or f"journey-{journey.id}"
    return send_file(
        io.BytesIO(data),
        mimetype=FORMATS[fmt][0],
        as_attachment=True,
        download_name=f"{name}.{fmt}",
        max_age=0,
    )
