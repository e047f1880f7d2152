"""Views of the data-vs-story pages (thin: parse, call one service, render)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for

from webapp.models import Role
from webapp.overlay import bp
from webapp.services import NotFound, ServiceError, overlay_view, surveys
from webapp.services import overlay as service
from webapp.views import actor, render, require_role

PREFIX = "/journeys/<int:journey_id>/data"


def _back(journey_id: int, **args):
    return redirect(url_for("orgs.overlay.show", journey_id=journey_id, **args))


@bp.get(PREFIX)
def show(journey_id: int):
    """The map with measured figures laid over it, the data-vs-story panel, links and snapshots."""
    args = request.args
    try:
        view = overlay_view.build(
            journey_id,
            snapshot_id=args.get("snapshot", type=int),
            compare_id=args.get("compare", type=int),
            metric=args.get("metric", "median_wait_before_s"),
            business=args.get("time") == "business",
        )
        linkable = (
            service.linkable_logs(journey_id, {state.link.event_log_id for state in view.states})
            if g.membership.role_enum.at_least(Role.EDITOR)
            else []
        )
    except NotFound:
        abort(404)
    return render("overlay/show.html", view=view, linkable=linkable, human=overlay_view.human_duration)


@bp.post(f"{PREFIX}/links")
@require_role(Role.EDITOR)
def link(journey_id: int):
    try:
        created = service.link_log(journey_id, request.form.get("event_log", type=int) or 0, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
        return _back(journey_id)
    return redirect(url_for("orgs.overlay.mapping", journey_id=journey_id, log_link_id=created.id))


@bp.post(f"{PREFIX}/links/<int:log_link_id>/delete")
@require_role(Role.EDITOR)
def unlink(journey_id: int, log_link_id: int):
    try:
        service.unlink(journey_id, log_link_id, actor())
    except NotFound:
        abort(404)
    flash("The log is no longer linked; its measurements of this journey are gone.", "success")
    return _back(journey_id)


@bp.get(f"{PREFIX}/links/<int:log_link_id>/mapping")
def mapping(journey_id: int, log_link_id: int):
    """Two columns: each activity of the log (with its events) and the step it belongs to."""
    try:
        link = service.get_link(journey_id, log_link_id)
        steps = service.layout(journey_id)
        proposed = service.proposal(link)
        current = service.current_mapping(link)
    except NotFound:
        abort(404)
    activities = service.log_activities(link.event_log)
    mapped_steps = set(proposed.values())
    return render(
        "overlay/mapping.html",
        link=link,
        steps=steps,
        activities=activities,
        proposed=proposed,
        current=current,
        versions=service.mapping_versions(link),
        steps_without_data=[s for s in steps if s["id"] not in mapped_steps],
        unmapped=[(name, events) for name, events in activities if name not in proposed],
        journey_id=journey_id,
    )


@bp.post(f"{PREFIX}/links/<int:log_link_id>/mapping")
@require_role(Role.EDITOR)
def save_mapping(journey_id: int, log_link_id: int):
    form = request.form
    chosen = {
        form.get(f"activity-{i}", ""): form.get(f"step-{i}", "")
        for i in range(form.get("count", type=int) or 0)
        if form.get(f"activity-{i}")
    }
    try:
        version = service.save_mapping(journey_id, log_link_id, chosen, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("orgs.overlay.mapping", journey_id=journey_id, log_link_id=log_link_id))
    flash(f"Mapping version {version.number} saved; the journey is being measured.", "success")
    return _back(journey_id)


@bp.post(f"{PREFIX}/links/<int:log_link_id>/refresh")
@require_role(Role.EDITOR)
def refresh(journey_id: int, log_link_id: int):
    try:
        service.refresh(journey_id, log_link_id, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
    return _back(journey_id)


@bp.get(f"{PREFIX}/links/<int:log_link_id>/status")
def status(journey_id: int, log_link_id: int):
    """The link's measurement progress; stops polling (286) once it is done."""
    try:
        state = service.link_state(journey_id, log_link_id)
    except NotFound:
        abort(404)
    response = render("overlay/_status.html", "overlay/_status.html", state=state, journey_id=journey_id)
    if state.snapshot is None or state.snapshot.status not in service.ACTIVE:
        if request.args.get("was") == "active":
            response.headers["HX-Refresh"] = "true"  # the figures changed: show them
        else:
            response.status_code = 286
    return response


@bp.get(f"{PREFIX}/snapshots/<int:snapshot_id>/case")
def case(journey_id: int, snapshot_id: int):
    """One example case's timeline: its events, each with the step it maps to."""
    try:
        snapshot = service.snapshot_for(journey_id, snapshot_id)
    except NotFound:
        abort(404)
    case_id = request.args.get("case", "")
    events = ((snapshot.details or {}).get("case_timelines") or {}).get(case_id)
    if events is None:
        abort(404)
    names = {s["id"]: s["name"] for s in snapshot.layout}
    return render("overlay/_case.html", "overlay/_case.html", case_id=case_id, events=events, names=names)


@bp.post(f"{PREFIX}/shadow")
@require_role(Role.EDITOR)
def add_shadow(journey_id: int):
    """One click: put a frequent activity the map misses onto the map, mapped and measured."""
    try:
        step = service.add_shadow_activity(
            journey_id, request.form.get("link", type=int) or 0, request.form.get("activity", ""), actor()
        )
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
        return _back(journey_id)
    flash(f"“{step.name}” is on the map now; the journey is being measured again.", "success")
    return _back(journey_id)


@bp.post(f"{PREFIX}/surveys")
@require_role(Role.EDITOR)
def import_surveys(journey_id: int):
    upload = request.files.get("file")
    data, filename = (upload.read(surveys.MAX_BYTES + 1), upload.filename or "") if upload else (b"", "")
    try:
        report = surveys.import_csv(journey_id, data, filename, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
        return _back(journey_id)
    flash(f"Imported {report.rows} rows: {report.scores} scores on {report.steps} steps.", "success")
    return _back(journey_id)


@bp.route("/settings/calendar", methods=["GET", "POST"])
def calendar():
    """The business calendar every duration in business time uses."""
    if request.method == "POST":
        if not g.membership.role_enum.at_least(Role.ADMIN):
            abort(403, description="Only admins change the business calendar.")
        form = request.form
        try:
            service.save_calendar(
                {
                    "timezone": form.get("timezone"),
                    "working_days": form.getlist("working_days"),
                    "day_start": form.get("day_start"),
                    "day_end": form.get("day_end"),
                    "holidays": (form.get("holidays") or "").splitlines(),
                },
                actor(),
            )
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash("Business calendar saved. Measure a journey again to use it.", "success")
        return redirect(url_for("orgs.overlay.calendar"))
    return render("overlay/calendar.html", calendar=service.calendar())


@bp.post("/eventlogs/<int:log_id>/draft-journey")
@require_role(Role.EDITOR)
def draft_journey(log_id: int):
    """Propose a journey from a mined log (a background job); the page waits for it."""
    try:
        job_id = service.start_draft(log_id, request.form.get("title", ""), actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("orgs.eventlogs.show", log_id=log_id))
    return redirect(url_for("orgs.overlay.draft_status", log_id=log_id, job_id=job_id))


@bp.get("/eventlogs/<int:log_id>/draft-journey/<job_id>")
def draft_status(log_id: int, job_id: str):
    try:
        state = service.draft_state(log_id, job_id)
    except NotFound:
        abort(404)
    if state.journey_id is not None and not request.headers.get("HX-Request"):
        return redirect(url_for("orgs.journeys.show", journey_id=state.journey_id))
    response = render(
        "overlay/draft.html", "overlay/_draft_status.html", state=state, log_id=log_id, job_id=job_id
    )
    if state.journey_id is not None:
        response.headers["HX-Redirect"] = url_for("orgs.journeys.show", journey_id=state.journey_id)
    return response
