"""Views of the journey editor (thin: parse, call one service, render the board or a fragment).

Live updates: the board polls `board?since=<last change id>` every 1.5 s; the server answers 204 when
nothing changed and the new board otherwise. Polling reads the database, so it works behind any number
of gunicorn processes, and costs one indexed query per viewer per poll.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Response, abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.journeys import board_cache, bp
from webapp.models import Role
from webapp.services import Conflict, NotFound, ServiceError
from webapp.services import journeys as service
from webapp.views import actor, render, require_role

CHANNELS = ["web", "email", "phone", "chat", "in_person", "app", "self_service_portal", "other"]
NOTE_KINDS = ["pain_point", "opportunity", "idea", "question"]
PRESENCE_TTL_S = 8
HISTORY_SHOWN = 200  # changes per history page, each one a point to restore


def _is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _journey(journey_id: int, *, with_people: bool = False):
    """The journey in the URL, or 404 (the same for another organisation's): one query, not the board."""
    try:
        return service.get_journey(journey_id, with_people=with_people)
    except NotFound:
        abort(404)


def _marker(journey_id: int) -> int:
    try:
        return service.change_marker(journey_id)
    except NotFound:
        abort(404)


def _render_board(journey_id: int, status: int = 200, marker: int | None = None):
    """The journey page, or only its board for htmx (a poll that found a change, an edit's answer)."""
    from webapp.services.accounts import people

    # The marker is read before the board: a change committed in between is then drawn and polled
    # again, never drawn-over and missed.
    marker = _marker(journey_id) if marker is None else marker
    board_only = _is_htmx() and not request.headers.get("HX-History-Restore-Request")
    journey = _journey(journey_id, with_people=not board_only)
    can_edit = g.membership.role_enum.at_least(Role.EDITOR) and not journey.archived_at

    def draw() -> str:
        board = service.board(journey_id, journey=journey)
        return render_template(
            "journeys/_board.html", board=board, since=marker, channels=CHANNELS, note_kinds=NOTE_KINDS
        )

    board_html = board_cache.board_html(
        organisation=g.organisation,
        journey=journey,
        marker=marker,
        can_edit=can_edit,
        script_root=request.script_root,
        draw=draw,
    )
    if board_only:
        response = make_response(board_html, status)
        response.vary.add("HX-Request")
        return response
    html = render(
        "journeys/show.html",
        journey=journey,
        board_html=board_html,
        personas=service.list_personas() if can_edit else [],
        people=people() if can_edit else [],
    )
    html.status_code = status
    return html


def _done(journey_id: int, message: str | None = None):
    """After a write: the new board for htmx, a redirect otherwise."""
    if _is_htmx():
        return _render_board(journey_id)
    if message:
        flash(message, "success")
    return redirect(url_for("orgs.journeys.show", journey_id=journey_id))


def _refused(journey_id: int, error: ServiceError):
    """A conflict shows both sides; another refusal says what to fix; NotFound is a 404."""
    if isinstance(error, NotFound) and "deleted" not in error.message:
        abort(404)
    if isinstance(error, Conflict):
        body = render(
            "journeys/_conflict.html",
            "journeys/_conflict.html",
            conflict=error,
            journey_id=journey_id,
            channels=CHANNELS,
        )
        body.status_code = 409
        body.headers["HX-Retarget"] = "#editor-messages"
        body.headers["HX-Reswap"] = "innerHTML"
        return body
    if _is_htmx():
        body = render("journeys/_message.html", "journeys/_message.html", message=error.message)
        body.status_code = 422
        body.headers["HX-Retarget"] = "#editor-messages"
        body.headers["HX-Reswap"] = "innerHTML"
        return body
    flash(error.message, "error")
    return redirect(url_for("orgs.journeys.show", journey_id=journey_id))


def _call(journey_id: int, function, /, *args: Any, message: str | None = None, **kwargs: Any):
    try:
        function(*args, **kwargs)
    except ServiceError as error:
        return _refused(journey_id, error)
    return _done(journey_id, message)


def _version(journey_id: int) -> int:
    """The version the form was based on; 400 without one (after a 404 for another organisation's)."""
    value = request.form.get("expected_version", type=int)
    if value is None:
        _journey(journey_id)
        abort(400, description="The form lacks the version it was based on; reload the page.")
    return value


# --- list ----------------------------------------------------------------------------------------


@bp.get("")
def index():
    """The organisation's journeys with search and filters; new from blank or template; import."""
    args = request.args
    archived = args.get("archived") == "1"
    try:
        journeys = service.list_journeys(
            search=args.get("q"),
            kind=args.get("kind") or None,
            state=args.get("state") or None,
            status=args.get("status") or None,
            tag=args.get("tag") or None,
            owner_id=args.get("owner", type=int),
            archived=archived,
        )
    except ServiceError as error:
        flash(error.message, "error")
        journeys = []
    from webapp.services.accounts import people

    return render(
        "journeys/index.html",
        "journeys/_list.html",
        journeys=journeys,
        templates=service.list_templates(),
        people=people(),
        archived=archived,
        args=args,
    )


@bp.route("/personas", methods=["GET", "POST"])
def personas():
    """The organisation's reusable personas: list, create and edit (editors)."""
    if request.method == "POST":
        if not g.membership.role_enum.at_least(Role.EDITOR):
            abort(403, description="Creating personas needs the editor role.")
        fields = {k: request.form.get(k, "") for k in ("name", "role", "goals", "frustrations", "quote")}
        persona_id = request.form.get("persona_id", type=int)
        try:
            if persona_id:
                service.update_persona(persona_id, fields, actor())
            else:
                service.create_persona(fields, actor())
            flash("Persona saved.", "success")
        except NotFound:
            abort(404)
        except ServiceError as error:
            flash(error.message, "error")
        return redirect(url_for("orgs.journeys.personas"))
    return render("journeys/personas.html", personas=service.list_personas())


@bp.post("")
@require_role(Role.EDITOR)
def create():
    """A new journey: blank, or from a built-in or organisation template."""
    template = request.form.get("template") or ""
    title = (request.form.get("title") or "").strip()
    try:
        if template:
            journey = service.create_from_template(
                int(template) if template.isdigit() else template, actor(), title=title or None
            )
        else:
            journey = service.create_journey(title, actor(), kind=request.form.get("kind") or "customer")
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("orgs.journeys.index"))
    return redirect(url_for("orgs.journeys.show", journey_id=journey.id))


@bp.post("/import")
@require_role(Role.EDITOR)
def import_journey():
    """A journey from an exported JSON file."""
    file = request.files.get("file")
    try:
        data = json.loads((file.read() if file else b"").decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        flash("That file is not JSON exported from Journeylens.", "error")
        return redirect(url_for("orgs.journeys.index"))
    try:
        journey = service.import_json(data, actor())
    except ServiceError as error:
        flash(f"Import refused: {error.message}", "error")
        return redirect(url_for("orgs.journeys.index"))
    flash(f"Imported {journey.title}.", "success")
    return redirect(url_for("orgs.journeys.show", journey_id=journey.id))


# --- the map -------------------------------------------------------------------------------------


@bp.get("/<int:journey_id>")
def show(journey_id: int):
    """The journey map editor (read-only for viewers)."""
    return _render_board(journey_id)


@bp.get("/<int:journey_id>/board")
def board(journey_id: int):
    """The board for live updates: 204 when nothing changed since `since` (one indexed query)."""
    marker = _marker(journey_id)  # 404 for other organisations
    if request.args.get("since", type=int) == marker:
        return Response(status=204)
    return _render_board(journey_id, marker=marker)


@bp.get("/<int:journey_id>/presence")
def presence(journey_id: int):
    """Who else has this journey open (each open editor reports itself every few seconds)."""
    _journey(journey_id)
    from webapp.queue import redis_connection

    key = f"journeylens:presence:{g.organisation.id}:{journey_id}"
    now = time.time()
    redis = redis_connection()
    pipe = redis.pipeline()
    pipe.zadd(key, {current_user.email: now})
    pipe.zremrangebyscore(key, 0, now - PRESENCE_TTL_S)
    pipe.zrange(key, 0, -1)
    pipe.expire(key, PRESENCE_TTL_S * 4)
    viewers = [v.decode() for v in pipe.execute()[2]]
    others = [v for v in viewers if v != current_user.email]
    return render("journeys/_presence.html", "journeys/_presence.html", others=others)


@bp.post("/<int:journey_id>")
@require_role(Role.EDITOR)
def update(journey_id: int):
    """Change the journey's title, kind, state, status, scenario or tags."""
    form = request.form
    changes = {k: form.get(k) for k in ("title", "kind", "state", "status", "scenario") if k in form}
    if "tags" in form:
        changes["tags"] = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
    for key in ("persona_id", "owner_id"):
        if key in form:
            changes[key] = form.get(key, type=int)
    return _call(
        journey_id,
        service.update_journey,
        journey_id,
        changes,
        actor(),
        expected_version=_version(journey_id),
    )


@bp.post("/<int:journey_id>/stages")
@require_role(Role.EDITOR)
def add_stage(journey_id: int):
    """Add a stage at the end."""
    return _call(journey_id, service.add_stage, journey_id, request.form.get("name") or "New stage", actor())


def _edit_column_or_row(journey_id: int, element_id: int, rename, reorder, delete):
    """Rename, move (to a position) or delete a stage or a lane, per the form's `action` (the service
    checks that it belongs to this journey)."""
    action = request.form.get("action", "rename")
    in_journey = {"expected_version": _version(journey_id), "journey_id": journey_id}
    if action == "delete":
        return _call(journey_id, delete, element_id, actor(), **in_journey)
    if action == "move":
        position = request.form.get("position", type=int) or 0
        return _call(journey_id, reorder, element_id, position, actor(), **in_journey)
    name = request.form.get("name", "")
    return _call(journey_id, rename, element_id, name, actor(), **in_journey)


@bp.post("/<int:journey_id>/stages/<int:stage_id>")
@require_role(Role.EDITOR)
def edit_stage(journey_id: int, stage_id: int):
    """Rename, move (buttons, or dragging its header) or delete a stage."""
    return _edit_column_or_row(
        journey_id, stage_id, service.rename_stage, service.reorder_stage, service.delete_stage
    )


@bp.post("/<int:journey_id>/lanes")
@require_role(Role.EDITOR)
def add_lane(journey_id: int):
    """Add a lane at the bottom."""
    return _call(journey_id, service.add_lane, journey_id, request.form.get("name") or "New lane", actor())


@bp.post("/<int:journey_id>/lanes/<int:lane_id>")
@require_role(Role.EDITOR)
def edit_lane(journey_id: int, lane_id: int):
    """Rename, move or delete a lane."""
    return _edit_column_or_row(
        journey_id, lane_id, service.rename_lane, service.reorder_lane, service.delete_lane
    )


@bp.post("/<int:journey_id>/steps")
@require_role(Role.EDITOR)
def add_step(journey_id: int):
    """Add a step to a cell (stage × lane)."""
    form = request.form
    return _call(
        journey_id,
        service.add_step,
        form.get("stage_id", type=int),
        form.get("lane_id", type=int),
        {"name": form.get("name") or "New step"},
        actor(),
        journey_id=journey_id,
    )


def _step_changes(form) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key in ("name", "description", "channel", "touchpoint", "owner_team"):
        if key in form:
            changes[key] = form.get(key, "")
    if "emotion" in form:
        raw = form.get("emotion", "").strip()
        changes["emotion"] = int(raw) if raw.lstrip("-").isdigit() else raw
    if "moment_of_truth_present" in form:
        changes["moment_of_truth"] = form.get("moment_of_truth") == "on"
    if "expected_duration_h" in form:
        raw = form.get("expected_duration_h", "").strip()
        try:
            changes["expected_duration_s"] = int(round(float(raw) * 3600)) if raw else None
        except ValueError:
            changes["expected_duration_s"] = raw
    return changes


@bp.post("/<int:journey_id>/steps/<int:step_id>")
@require_role(Role.EDITOR)
def edit_step(journey_id: int, step_id: int):
    """Update a step's fields (with the version the form was based on); htmx gets only that step back,
    with the emotion curve out of band, drawn without loading the rest of the board."""
    changes, version = _step_changes(request.form), _version(journey_id)
    try:
        service.update_step(step_id, changes, actor(), expected_version=version, journey_id=journey_id)
        card = service.step_card(journey_id, step_id) if _is_htmx() else None
    except ServiceError as error:
        return _refused(journey_id, error)
    if card is None:
        return _done(journey_id)
    return render(
        "journeys/_step_update.html", step=card.step, board=card, channels=CHANNELS, note_kinds=NOTE_KINDS
    )


@bp.post("/<int:journey_id>/steps/<int:step_id>/move")
@require_role(Role.EDITOR)
def move_step(journey_id: int, step_id: int):
    """Move a step to a stage, lane and position (drag and drop, or the keyboard form)."""
    form = request.form
    return _call(
        journey_id,
        service.move_step,
        step_id,
        actor(),
        stage_id=form.get("stage_id", type=int),
        lane_id=form.get("lane_id", type=int),
        position=form.get("position", type=int),
        expected_version=_version(journey_id),
        journey_id=journey_id,
    )


@bp.post("/<int:journey_id>/steps/<int:step_id>/delete")
@require_role(Role.EDITOR)
def delete_step(journey_id: int, step_id: int):
    """Delete a step (undo brings it back)."""
    return _call(
        journey_id,
        service.delete_step,
        step_id,
        actor(),
        expected_version=_version(journey_id),
        journey_id=journey_id,
    )


@bp.post("/<int:journey_id>/steps/<int:step_id>/notes")
@require_role(Role.EDITOR)
def add_note(journey_id: int, step_id: int):
    """Pin a pain point, opportunity, idea or question to a step."""
    form = request.form
    kind, text = form.get("kind", ""), form.get("text", "")
    return _call(journey_id, service.add_note, step_id, kind, text, actor(), journey_id=journey_id)


@bp.post("/<int:journey_id>/notes/<int:note_id>/delete")
@require_role(Role.EDITOR)
def delete_note(journey_id: int, note_id: int):
    """Remove a note."""
    return _call(journey_id, service.delete_note, note_id, actor(), journey_id=journey_id)


@bp.post("/<int:journey_id>/undo")
@require_role(Role.EDITOR)
def undo(journey_id: int):
    """Bring back what was deleted last."""
    return _call(journey_id, service.undo_last_delete, journey_id, actor(), message="Restored.")


@bp.post("/<int:journey_id>/duplicate")
@require_role(Role.EDITOR)
def duplicate(journey_id: int):
    """Copy the journey (for example the current state as a start for the future state)."""
    _journey(journey_id)
    state = request.form.get("state") or None
    try:
        copy = service.duplicate_journey(journey_id, actor(), state=state)
    except ServiceError as error:
        return _refused(journey_id, error)
    flash(f"Copied as {copy.title}.", "success")
    return redirect(url_for("orgs.journeys.show", journey_id=copy.id))


@bp.post("/<int:journey_id>/archive")
@require_role(Role.EDITOR)
def archive(journey_id: int):
    """Archive (or, with restore=1, bring back) a journey."""
    _journey(journey_id)
    function = service.restore_journey if request.form.get("restore") else service.archive_journey
    return _call(journey_id, function, journey_id, actor(), message="Done.")


@bp.post("/<int:journey_id>/template")
@require_role(Role.EDITOR)
def save_template(journey_id: int):
    """Save the journey as an organisation template."""
    _journey(journey_id)
    return _call(
        journey_id,
        service.save_as_template,
        journey_id,
        request.form.get("name", ""),
        actor(),
        message="Saved as a template.",
    )


@bp.get("/<int:journey_id>/history")
def history(journey_id: int):
    """Every change as a timeline, each one a point to restore, and the named versions."""
    journey = _journey(journey_id)
    older_than = request.args.get("before", type=int)
    return render(
        "journeys/history.html",
        journey=journey,
        changes=service.history(journey_id, limit=HISTORY_SHOWN, before=older_than),
        versions=service.list_versions(journey_id),
        shown=HISTORY_SHOWN,
        older_than=older_than,
    )


@bp.post("/<int:journey_id>/versions")
@require_role(Role.EDITOR)
def save_version(journey_id: int):
    """Name the current content (e.g. "Workshop 3 March")."""
    _journey(journey_id)
    try:
        service.save_named_version(journey_id, request.form.get("name", ""), actor())
        flash("Version saved.", "success")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("orgs.journeys.history", journey_id=journey_id))


@bp.post("/<int:journey_id>/versions/<int:version_id>/restore")
@require_role(Role.EDITOR)
def restore_version(journey_id: int, version_id: int):
    """Put a named version back (recorded in the history, so it can be undone the same way)."""
    _journey(journey_id)
    try:
        service.restore_version(journey_id, version_id, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("orgs.journeys.history", journey_id=journey_id))
    flash("Version restored.", "success")
    return redirect(url_for("orgs.journeys.show", journey_id=journey_id))


@bp.post("/<int:journey_id>/history/<int:change_id>/restore")
@require_role(Role.EDITOR)
def restore_change(journey_id: int, change_id: int):
    """Put the journey back as it was right after one change (recorded, so restoring again undoes it)."""
    try:
        restored = service.restore_to_change(journey_id, change_id, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("orgs.journeys.history", journey_id=journey_id))
    if restored is None:
        flash("Nothing to restore: the journey is already as it was after that change.", "info")
        return redirect(url_for("orgs.journeys.history", journey_id=journey_id))
    flash(
        f"Restored as it was after change #{change_id}. To undo it, restore the change before this one.",
        "success",
    )
    return redirect(url_for("orgs.journeys.show", journey_id=journey_id))


@bp.get("/<int:journey_id>/export.json")
def export_json(journey_id: int):
    """The journey as JSON (imports back exactly)."""
    journey = _journey(journey_id)
    body = json.dumps(service.export_json(journey_id), indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="journey-{journey.id}.json"'},
    )


@bp.get("/<int:journey_id>/export.csv")
def export_csv(journey_id: int):
    """One row per step, safe to open in a spreadsheet."""
    journey = _journey(journey_id)
    return Response(
        service.export_csv(journey_id),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="journey-{journey.id}.csv"'},
    )
