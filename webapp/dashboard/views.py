"""Views of the executive dashboard (thin: parse, call one service, render).

Everything here reads, for every member: the dashboard writes nothing but the reader's own visit row.
The one POST starts a PDF/PNG export, which any member may (like a journey map's export).
"""

from __future__ import annotations

import io

from flask import Response, abort, g, redirect, request, send_file, url_for
from flask_login import current_user
from redis.exceptions import RedisError

from webapp import export_jobs, queue
from webapp.dashboard import bp
from webapp.export_jobs import EXPORT_TIMEOUT_S, FORMATS
from webapp.extensions import db
from webapp.models.types import utcnow
from webapp.services import NotFound, digests
from webapp.services import dashboard as service
from webapp.views import render

EXPORT_JOB = "worker.jobs.dashboard.render_dashboard"


@bp.get("")
def index():
    """Every goal of the organisation, grouped by journey, beside the journey portfolio; with htmx (the
    filters), only the body below the filters."""
    view = service.open_dashboard(current_user.id, service.Filters.parse(request.args))
    response = render(
        "dashboard/index.html", "dashboard/_body.html", dashboard=view, **service.template_context()
    )
    if request.headers.get("HX-Request"):
        # The address bar shows the filters in use, without the empty ones the form also sends.
        response.headers["HX-Push-Url"] = url_for("orgs.dashboard.index", **view.filters.query())
    db.session.commit()  # the reader's visit, after drawing (see open_dashboard)
    return response


def _csv(text: str, name: str) -> Response:
    stamp = utcnow().strftime("%Y-%m-%d")
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{g.organisation.slug}-{name}-{stamp}.csv"'},
    )


@bp.get("/goals.csv")
def goals_csv():
    """The goals shown with the current filters, one row each, safe to open in a spreadsheet."""
    return _csv(service.goals_csv(service.Filters.parse(request.args)), "goals")


@bp.get("/measurements.csv")
def measurements_csv():
    """Every measurement of the goals shown with the current filters."""
    return _csv(service.measurements_csv(service.Filters.parse(request.args)), "goal-measurements")


# --- PDF / PNG export (by the worker, with Chromium) --------------------------------------------------


def _widget(export: dict, status: int = 200):
    body = render("dashboard/_export_status.html", "dashboard/_export_status.html", export=export)
    body.status_code = status
    return body


def _job(job_id: str):
    job = export_jobs.fetch(job_id, EXPORT_JOB, g.organisation.id)
    if job is None:
        abort(404)
    return job


@bp.post("/exports")
def start_export():
    """Queue a PDF or PNG of the dashboard with the current filters; answers the widget that watches it."""
    fmt = request.form.get("fmt", "")
    if fmt not in FORMATS:
        abort(400, description="Choose PDF or PNG as the export format.")
    filters = service.Filters.parse(request.form).query()
    try:
        job = queue.enqueue(
            "default",
            EXPORT_JOB,
            fmt,
            current_user.id,
            filters,
            organisation_id=g.organisation.id,
            description=f"export the dashboard as {fmt}",
            job_timeout=EXPORT_TIMEOUT_S,
            retries=0,  # a failure (no Chromium, say) would fail again; the widget offers to retry
        )
        job.meta.update(subject="dashboard", format=fmt, requested_by=current_user.id)
        job.save_meta()
    except (queue.RedisNotConfigured, RedisError):
        return _widget(export_jobs.queue_unavailable(fmt))
    if not request.headers.get("HX-Request"):
        return redirect(url_for("orgs.dashboard.export_status", job_id=job.id), 303)
    return _widget(export_jobs.state(job, fmt), 202)


@bp.get("/exports/<job_id>")
def export_status(job_id: str):
    """The export's progress; once done, the download link (htmx polls this every second)."""
    job = _job(job_id)
    return _widget(export_jobs.state(job, job.args[0] if job.args else "pdf"))


@bp.get("/exports/<job_id>/file")
def export_file(job_id: str):
    """The exported PDF or PNG, as a download."""
    job = _job(job_id)
    data = export_jobs.stored_file(job, g.organisation.id)
    if data is None:
        abort(404)
    fmt = export_jobs.state(job, job.args[0] if job.args else "pdf")["format"]
    stamp = job.enqueued_at.strftime("%Y-%m-%d") if job.enqueued_at else utcnow().strftime("%Y-%m-%d")
    return send_file(
        io.BytesIO(data),
        mimetype=FORMATS[fmt][0],
        as_attachment=True,
        download_name=f"{g.organisation.slug}-dashboard-{stamp}.{fmt}",
        max_age=0,
    )


# --- weekly digests ------------------------------------------------------------------------------------


@bp.get("/digests")
def digest_list():
    """The member's own weekly digests, newest first."""
    return render(
        "dashboard/digests.html", digests=digests.digests_of(current_user.id), **service.template_context()
    )


@bp.get("/digests/<int:digest_id>")
def digest(digest_id: int):
    """One of the member's weekly digests."""
    try:
        found = digests.get_digest(current_user.id, digest_id)
    except NotFound:
        abort(404)
    return render("dashboard/digest.html", digest=found, **service.template_context())
