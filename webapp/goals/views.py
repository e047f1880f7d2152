"""Views of goals (thin: parse, call one service, render). Viewers read; every write needs the editor
role (check-ins: the goal's owner or an admin; tolerances: admins)."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, g, redirect, request, url_for
from wtforms.fields.choices import SelectChoice

from webapp.extensions import db
from webapp.goals import bp
from webapp.goals.forms import (
    CheckInForm,
    GoalForm,
    InitiativeForm,
    MeasurementForm,
    TolerancesForm,
)
from webapp.models import Role
from webapp.models.types import utcnow
from webapp.services import Conflict, Forbidden, NotFound, ServiceError, accounts
from webapp.services import goals as service
from webapp.views import actor, form_error, render, require_role

GOAL = "/<int:goal_id>"


def _can_edit() -> bool:
    return g.membership.role_enum.at_least(Role.EDITOR)


def _back(goal_id: int, anchor: str | None = None):
    return redirect(url_for("orgs.goals.show", goal_id=goal_id, _anchor=anchor))


def _goal_or_404(goal_id: int):
    try:
        return service.get_goal(goal_id)
    except NotFound:
        abort(404)


def _choose_people(field, people=None) -> None:
    field.choices = [SelectChoice("", "Choose…")] + [
        SelectChoice(str(u.id), u.label) for u in (service.editors() if people is None else people)
    ]


def _goal_form(form: GoalForm, *, editing: bool) -> GoalForm:
    _choose_people(form.owner_id)
    if editing:
        for name in ("journey_id", "step_id", "kpi", "kpi_metric"):
            delattr(form, name)
        return form
    pairs = service.journeys_with_steps()
    form.journey_id.choices = [SelectChoice("", "Choose…")] + [
        SelectChoice(str(j.id), j.title) for j, _ in pairs
    ]
    form.step_id.choices = [SelectChoice("", "No step: the whole journey")] + [
        SelectChoice(str(step.id), step.name, optgroup=f"{journey.title} (#{journey.id})")
        for journey, journey_steps in pairs
        for step in journey_steps
    ]
    return form


@bp.get("")
def index():
    """The organisation's goals with filters by status, owner and journey."""
    args = request.args
    status = args.get("status") or None
    owner_id = args.get("owner", type=int)
    journey_id = args.get("journey", type=int)
    try:
        found = service.list_goals(status=status, owner_id=owner_id, journey_id=journey_id)
    except ServiceError as error:
        flash(error.message, "error")
        found, status = service.list_goals(owner_id=owner_id, journey_id=journey_id), None
    tolerances = service.tolerances()
    return render(
        "goals/index.html",
        goals=found,
        rules={goal.id: service.explain(goal, tolerances) for goal in found},
        overdue={goal.id for goal in found if service.check_in_overdue(goal)},
        filters={"status": status, "owner": owner_id, "journey": journey_id},
        people=accounts.people(),
        journeys=service.journeys(),
        labels=service.STATUS_LABELS,
        service=service,
        can_edit=_can_edit(),
    )


@bp.route("/new", methods=["GET", "POST"])
@require_role(Role.EDITOR)
def create():
    """Set a new goal."""
    form = _goal_form(GoalForm(), editing=False)
    if request.method == "GET":
        if request.args.get("journey"):
            form.journey_id.data = request.args["journey"]
        form.owner_id.data = str(g.membership.user_id)
        today = utcnow().date()
        form.start_on.data, form.due_on.data = today, today + timedelta(days=90)
    if form.validate_on_submit():
        try:
            goal = service.create_goal(form.service_fields(), actor())
        except ServiceError as error:
            form_error(form, error)
        else:
            flash(
                "Goal set."
                + ("" if goal.current_value is not None else " Nothing is measured yet for its KPI."),
                "success",
            )
            return _back(goal.id)
    status = 422 if request.method == "POST" else 200
    return render("goals/form.html", form=form, goal=None), status


@bp.get(GOAL)
def show(goal_id: int):
    """A goal: progress, chart, measurements, check-ins, initiatives with before/after, events."""
    try:
        view = service.page(goal_id, reader_id=g.membership.user_id)
    except NotFound:
        abort(404)
    goal = view.goal
    can_edit = _can_edit()
    can_check_in = can_edit and (
        goal.owner_id == g.membership.user_id or g.membership.role_enum.at_least(Role.ADMIN)
    )
    initiative_form = InitiativeForm(formdata=None)
    people = accounts.people(at_least=Role.EDITOR)
    _choose_people(initiative_form.owner_id, people)
    response = render(
        "goals/show.html",
        view=view,
        goal=goal,
        labels=service.STATUS_LABELS,
        service=service,
        can_edit=can_edit,
        can_check_in=can_check_in,
        measurement_form=MeasurementForm(formdata=None),
        check_in_form=CheckInForm(formdata=None),
        initiative_form=initiative_form,
        people=people,
        states=service.INITIATIVE_STATES,
    )
    db.session.commit()  # the reader's notifications about this goal, read (see service.page)
    return response


@bp.route(f"{GOAL}/edit", methods=["GET", "POST"])
@require_role(Role.EDITOR)
def edit(goal_id: int):
    """Change a goal (not its journey, step or KPI)."""
    goal = _goal_or_404(goal_id)
    form = _goal_form(GoalForm(obj=goal), editing=True)
    conflict = None
    if request.method == "GET":
        form.owner_id.data = str(goal.owner_id or "")
        form.expected_version.data = str(goal.version)
    if form.validate_on_submit():
        try:
            service.update_goal(
                goal.id, form.service_fields(), actor(), expected_version=form.version_drawn()
            )
        except NotFound:
            abort(404)
        except Conflict as error:
            # The form keeps what this editor typed; saving it again (now against the stored version)
            # is "keep mine", reloading the form is "take theirs".
            conflict = error
            form.expected_version.data = str(error.stored_version)
        except ServiceError as error:
            form_error(form, error)
        else:
            flash("Goal saved.", "success")
            return _back(goal.id)
    status = 409 if conflict else 422 if request.method == "POST" else 200
    return render(
        "goals/form.html", form=form, goal=goal, kpi=service.kpi_label(goal), conflict=conflict
    ), status


@bp.post(f"{GOAL}/delete")
@require_role(Role.EDITOR)
def delete(goal_id: int):
    """Delete a goal with its history."""
    try:
        service.delete_goal(goal_id, actor())
    except NotFound:
        abort(404)
    flash("Goal deleted.", "success")
    return redirect(url_for("orgs.goals.index"))


@bp.post(f"{GOAL}/measurements")
@require_role(Role.EDITOR)
def add_measurement(goal_id: int):
    """A measurement by hand (manual KPIs)."""
    _goal_or_404(goal_id)
    form = request.form
    try:
        service.record_manual(goal_id, form.get("at"), form.get("value"), form.get("note", ""), actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash("Measurement recorded.", "success")
    return _back(goal_id, "measurements")


@bp.post(f"{GOAL}/check-ins")
@require_role(Role.EDITOR)
def add_check_in(goal_id: int):
    """The owner's status note with a confidence."""
    _goal_or_404(goal_id)
    form = request.form
    try:
        service.check_in(
            goal_id, form.get("note", ""), form.get("confidence"), actor(), g.membership.role_enum
        )
    except NotFound:
        abort(404)
    except Forbidden as error:
        abort(403, description=error.message)
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash("Check-in posted.", "success")
    return _back(goal_id, "check-ins")


_INITIATIVE_FIELDS = ("title", "owner_id", "start_on", "due_on", "state")


@bp.post(f"{GOAL}/initiatives")
@require_role(Role.EDITOR)
def add_initiative(goal_id: int):
    """An initiative under the goal."""
    _goal_or_404(goal_id)
    fields = {name: request.form.get(name) for name in _INITIATIVE_FIELDS}
    try:
        service.add_initiative(goal_id, fields, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash("Initiative added.", "success")
    return _back(goal_id, "initiatives")


@bp.post(f"{GOAL}/initiatives/<int:initiative_id>")
@require_role(Role.EDITOR)
def update_initiative(goal_id: int, initiative_id: int):
    """Change an initiative: the fields sent (its state, dates, owner or title)."""
    _goal_or_404(goal_id)
    fields = {name: request.form.get(name) for name in _INITIATIVE_FIELDS if name in request.form}
    try:
        service.update_initiative(goal_id, initiative_id, fields, actor())
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash("Initiative saved.", "success")
    return _back(goal_id, "initiatives")


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    """The status tolerances (admins change them; everyone may read them)."""
    current = service.tolerances()
    form = TolerancesForm(data={"on_track": current.on_track, "at_risk": current.at_risk})
    if request.method == "POST":
        if not g.membership.role_enum.at_least(Role.ADMIN):
            abort(403, description="Only admins change the goal tolerances.")
        if form.validate_on_submit():
            try:
                service.save_tolerances(form.on_track.data, form.at_risk.data, actor())
            except ServiceError as error:
                form_error(form, error)
            else:
                flash("Tolerances saved; every goal's status was recomputed with them.", "success")
                return redirect(url_for("orgs.goals.settings"))
        return render("goals/settings.html", form=form, tolerances=current), 422
    return render("goals/settings.html", form=form, tolerances=current)
