"""Views of the event-log pages (thin: parse, call one service, render)."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, request, url_for

from webapp.eventlogs import bp
from webapp.eventlogs.forms import UploadForm
from webapp.models import Role
from webapp.services import NotFound, ServiceError, eventlogs
from webapp.views import actor, render, require_role

# Format specs the miner understands (worker/mining/timestamps.py): a date part stands for that date
# followed by any common time of day; a full pattern with time directives is used exactly.
TIMESTAMP_FORMATS = [
    ("", "Detect automatically"),
    ("ISO8601", "ISO 8601 (2024-03-01 09:30:00, optional offset)"),
    ("%Y/%m/%d", "2024/03/01 09:30"),
    ("%d/%m/%Y", "01/03/2024 09:30 (day first)"),
    ("%m/%d/%Y", "03/01/2024 09:30 (month first)"),
    ("%d-%m-%Y", "01-03-2024 09:30 (day first)"),
    ("%m-%d-%Y", "03-01-2024 09:30 (month first)"),
    ("%d.%m.%Y", "01.03.2024 09:30"),
    ("%d-%b-%Y", "01-Mar-2024 09:30"),
    ("EPOCH_S", "Seconds since 1970 (Unix time)"),
    ("EPOCH_MS", "Milliseconds since 1970"),
]


def _log(log_id: int):
    try:
        return eventlogs.get(log_id)
    except NotFound:
        abort(404)


@bp.get("")
def index():
    """All logs of the organisation, and the upload form."""
    return render(
        "eventlogs/index.html",
        form=UploadForm(),
        logs=eventlogs.all_logs(),
        max_upload_mib=current_app.config["MAX_UPLOAD_BYTES"] // (1024 * 1024),
    )


@bp.post("")
@require_role(Role.EDITOR)
def upload():
    """Receive a file (streamed to storage by the service) and go to its page."""
    request.max_content_length = current_app.config["MAX_UPLOAD_BYTES"] + 1024 * 1024
    form = UploadForm()
    if not form.validate_on_submit():
        abort(400, description="The form expired; reload the page and upload again.")
    file = request.files.get("file")
    try:
        log = eventlogs.upload(
            file.filename if file else "", file.stream if file else None, actor(), form.name.data
        )
    except ServiceError as error:
        if request.headers.get("HX-Request"):
            return render("eventlogs/_upload_error.html", message=error.message), 422
        flash(error.message, "error")
        return redirect(url_for("orgs.eventlogs.index"))
    if getattr(log, "queue_paused", None):
        flash(log.queue_paused, "info")
    target = url_for("orgs.eventlogs.show", log_id=log.id)
    if request.headers.get("HX-Request"):
        return "", 201, {"HX-Redirect": target}
    return redirect(target)


def _results(log, run_id: int | None):
    try:
        return eventlogs.results(log, run_id=run_id)
    except NotFound:
        abort(404)


@bp.get("/<int:log_id>")
def show(log_id: int):
    """A log: its mapping form, its progress, its failure, or its measured process (any finished run)."""
    log = _log(log_id)
    results = _results(log, request.args.get("run", type=int))
    return render(
        "eventlogs/show.html",
        log=log,
        run=eventlogs.latest_run(log),
        results=results,
        all_cases_run=eventlogs.latest_finished_run(log, unfiltered=True),
        filter_words=eventlogs.describe_filters(results.run.filters if results else None),
        proposed=eventlogs.proposed_mapping(log),
        timestamp_formats=TIMESTAMP_FORMATS,
        role_labels=eventlogs.ROLE_LABELS,
        duplicate=eventlogs.get(log.duplicate_of_id) if log.duplicate_of_id else None,
        mapping_errors={},
    )


@bp.get("/<int:log_id>/status")
def status(log_id: int):
    """The progress widget (polled by htmx while a run is queued or running)."""
    log = _log(log_id)
    run = eventlogs.latest_run(log)
    finished_now = (
        run is not None and run.status in ("finished", "failed", "cancelled") and log.preview is not None
    )
    if (
        request.headers.get("HX-Request")
        and request.args.get("was") in ("queued", "running", "uploaded")
        and (finished_now or (log.preview and request.args.get("was") == "uploaded"))
    ):
        # The state changed under the widget: reload the page so the results (or the form) appear.
        return "", 200, {"HX-Refresh": "true"}
    return render(
        "eventlogs/_status.html", "eventlogs/_status.html", log=log, run=run, gave_way=eventlogs.gave_way(run)
    )


@bp.post("/<int:log_id>/mapping")
@require_role(Role.EDITOR)
def confirm_mapping(log_id: int):
    """Confirm (or correct) the column mapping and start mining."""
    log = _log(log_id)
    try:
        eventlogs.confirm_mapping(log, request.form.to_dict(), actor())
    except eventlogs.MappingErrors as error:
        return render(
            "eventlogs/show.html",
            log=log,
            run=eventlogs.latest_run(log),
            results=None,
            all_cases_run=None,
            filter_words=[],
            proposed=request.form.to_dict(),
            timestamp_formats=TIMESTAMP_FORMATS,
            role_labels=eventlogs.ROLE_LABELS,
            duplicate=None,
            mapping_errors=error.errors,
        ), 422
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("orgs.eventlogs.show", log_id=log.id))


@bp.post("/<int:log_id>/filter")
@require_role(Role.EDITOR)
def apply_filter(log_id: int):
    """Re-mine the log in the background for the chosen period, attribute values or variant."""
    log = _log(log_id)
    raw = {
        "start": request.form.get("start"),
        "end": request.form.get("end"),
        "variant": request.form.get("variant"),
        "attributes": {
            key.removeprefix("attr:"): request.form.getlist(key)
            for key in request.form
            if key.startswith("attr:")
        },
    }
    try:
        eventlogs.apply_filters(log, raw, actor())
        flash("Mining the filtered cases…", "info")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("orgs.eventlogs.show", log_id=log.id))


@bp.post("/<int:log_id>/cancel")
@require_role(Role.EDITOR)
def cancel(log_id: int):
    """Stop mining this log."""
    log = _log(log_id)
    try:
        eventlogs.cancel(log, actor())
        flash("Mining cancelled. The upload is kept.", "info")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("orgs.eventlogs.show", log_id=log.id))


@bp.post("/<int:log_id>/remine")
@require_role(Role.EDITOR)
def remine(log_id: int):
    """Mine the kept upload again."""
    log = _log(log_id)
    try:
        eventlogs.remine(log, actor())
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("orgs.eventlogs.show", log_id=log.id))


@bp.post("/<int:log_id>/delete")
@require_role(Role.EDITOR)
def delete(log_id: int):
    """Delete the file and all its results."""
    log = _log(log_id)
    name = log.name
    eventlogs.delete(log, actor())
    flash(f"{name} and its results were deleted.", "success")
    return redirect(url_for("orgs.eventlogs.index"))


@bp.get("/<int:log_id>/map.json")
def process_map(log_id: int):
    """The directly-follows graph for the process-map widget."""
    log = _log(log_id)
    results = _results(log, request.args.get("run", type=int))
    if results is None:
        abort(404)
    return jsonify(
        {
            "activities": [
                {"name": a.activity, "events": a.events, "cases": a.cases} for a in results.activities
            ],
            **results.dfg_json(),
        }
    )


@bp.app_template_filter("duration")
def _duration(seconds) -> str:
    """A duration a person reads at a glance: 45 s, 12 min, 3.2 h, 2 d 4 h."""
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    days, rest = divmod(seconds, 86400)
    return f"{days:.0f} d {rest / 3600:.0f} h"


@bp.app_template_filter("filesize")
def _filesize(size_bytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size_bytes < 1024 or unit == "GiB":
            return f"{size_bytes:.0f} {unit}" if unit == "bytes" else f"{size_bytes:.1f} {unit}"
        size_bytes /= 1024
    return ""
