"""PDF and PNG exports of a journey map: start one (any member may), watch its progress, download it.

Chromium renders the map in a worker (worker/jobs/exports.py, enqueued by dotted path so the web process
never imports it). The RQ job's meta is the record: its organisation, journey and format, the phase and
progress, and the storage key of the file or the reason it failed (read by webapp/export_jobs.py). A job
is only ever shown under the URL of its own organisation and journey; any other URL gets the same 404 as
a job that does not exist.
"""

from __future__ import annotations

import io

from flask import abort, g, redirect, request, send_file, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from werkzeug.utils import secure_filename

from webapp import export_jobs, queue
from webapp.export_jobs import EXPORT_TIMEOUT_S, FORMATS
from webapp.journeys import bp
from webapp.services import NotFound
from webapp.services import journeys as service
from webapp.views import render

JOB_PATH = "worker.jobs.exports.render_journey"


def _journey(journey_id: int):
    try:
        return service.get_journey(journey_id)
    except NotFound:
        abort(404)


def _job(journey_id: int, job_id: str):
    """The export job of this organisation's journey, else 404 (missing, foreign and mismatched alike)."""
    journey = _journey(journey_id)

    def of_this_journey(job) -> bool:
        # The journey is in the job's arguments from the start; the meta repeats it once it is saved.
        return (job.meta or {}).get("journey_id", job.args[0] if job.args else None) == journey.id

    job = export_jobs.fetch(job_id, JOB_PATH, g.organisation.id, of_this_journey)
    if job is None:
        abort(404)
    return journey, job


def _state(job) -> dict:
    return export_jobs.state(job, default_format=job.args[1] if len(job.args) > 1 else "pdf")


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
        return _widget(journey, export_jobs.queue_unavailable(fmt))
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
    data = export_jobs.stored_file(job, g.organisation.id)
    if data is None:
        abort(404)
    fmt = _state(job)["format"]
    name = secure_filename(journey.title) or f"journey-{journey.id}"
    return send_file(
        io.BytesIO(data),
        mimetype=FORMATS[fmt][0],
        as_attachment=True,
        download_name=f"{name}.{fmt}",
        max_age=0,
    )
