"""Views of the organisation pages (thin: parse, call one service, render)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from webapp.models import Role
from webapp.orgs import bp
from webapp.orgs.forms import AuditFilterForm, DeleteForm, InviteForm, RenameForm, RoleForm, TokenForm
from webapp.security import end_session
from webapp.services import Forbidden, NotFound, ServiceError, accounts, audit, invitations, tokens
from webapp.views import actor, form_error, render, require_role


def _service_call(callable_, *args, **kwargs):
    """Run a service; turn its refusals into 404/403 or a flash message."""
    try:
        return callable_(*args, **kwargs), None
    except NotFound:
        abort(404)
    except Forbidden as error:
        abort(403, description=error.message)
    except ServiceError as error:
        return None, error


def _public_base() -> str:
    """Where people reach this server: PUBLIC_URL when set (behind proxies), else this request's host."""
    return (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")


@bp.get("/")
def overview():
    """The organisation's home: where to start."""
    return render_template("orgs/overview.html", members=accounts.members())


@bp.get("/members")
def members():
    """Members, their roles, and pending invitations."""
    can_manage = g.membership.role_enum.at_least(Role.ADMIN)
    return render_template(
        "orgs/members.html",
        members=accounts.members(),
        pending=invitations.pending() if can_manage else [],
        invite_form=InviteForm(),
        role_form=RoleForm(),
    )


@bp.post("/members/<int:membership_id>/role")
@require_role(Role.ADMIN)
def change_role(membership_id: int):
    """Change one member's role."""
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400, description="Choose a role.")
    membership, error = _service_call(
        accounts.change_role, membership_id, form.role.data, g.membership.role_enum, actor()
    )
    if error:
        flash(error.message, "error")
    else:
        flash(f"{membership.user.email} is now {membership.role}.", "success")
    return redirect(url_for("orgs.members"))


@bp.post("/members/<int:membership_id>/remove")
def remove_member(membership_id: int):
    """Remove a member (admins), or leave (anyone, for themselves)."""
    if not RoleForm().validate_on_submit() and request.form.get("csrf_token") is None:
        abort(400)
    leaving = membership_id == g.membership.id
    if not leaving and not g.membership.role_enum.at_least(Role.ADMIN):
        abort(403, description="Only admins can remove members.")
    _, error = _service_call(accounts.remove_member, membership_id, g.membership.role_enum, actor())
    if error:
        flash(error.message, "error")
        return redirect(url_for("orgs.members"))
    if leaving:
        end_session()  # leaving ends the user's sessions, this one included
        flash(f"You left {g.organisation.name}. Log in again to continue.", "info")
        return redirect(url_for("auth.login"))
    flash("Member removed; their sessions have ended.", "success")
    return redirect(url_for("orgs.members"))


@bp.post("/invitations")
@require_role(Role.ADMIN)
def invite():
    """Invite an email with a role; the link is shown here (and mailed when SMTP is set up)."""
    form = InviteForm()
    issued = None
    if form.validate_on_submit():
        issued, error = _service_call(
            invitations.invite,
            g.organisation,
            form.email.data,
            form.role.data,
            g.membership.role_enum,
            actor(),
        )
        if error:
            form_error(form, error)
    status = 201 if issued else 422
    return render_template(
        "orgs/members.html",
        members=accounts.members(),
        pending=invitations.pending(),
        invite_form=form if not issued else InviteForm(formdata=None),
        role_form=RoleForm(),
        issued=issued,
        invite_url=_public_base() + issued.path if issued else None,
    ), status


@bp.post("/invitations/<int:invitation_id>/revoke")
@require_role(Role.ADMIN)
def revoke_invitation(invitation_id: int):
    """Withdraw an invitation."""
    _service_call(invitations.revoke, invitation_id, actor())
    flash("Invitation withdrawn.", "success")
    return redirect(url_for("orgs.members"))


@bp.route("/tokens", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def api_tokens():
    """API tokens: create (shown once), list, revoke."""
    form = TokenForm()
    issued = None
    if form.validate_on_submit():
        issued, error = _service_call(
            tokens.issue, current_user._get_current_object(), form.name.data, actor()
        )
        if error:
            form_error(form, error)
    return render_template("orgs/tokens.html", form=form, tokens=tokens.tokens_for(), issued=issued)


@bp.post("/tokens/<int:token_id>/revoke")
@require_role(Role.ADMIN)
def revoke_token(token_id: int):
    """Revoke a token: it stops working at once."""
    _service_call(tokens.revoke, token_id, actor())
    flash("Token revoked.", "success")
    return redirect(url_for("orgs.api_tokens"))


@bp.route("/settings", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def settings():
    """Organisation settings: name; for owners also transfer and delete."""
    rename_form = RenameForm(obj=g.organisation)
    if rename_form.validate_on_submit():
        _, error = _service_call(accounts.rename_organisation, g.organisation, rename_form.name.data, actor())
        if error:
            form_error(rename_form, error)
        else:
            flash("Organisation renamed.", "success")
            return redirect(url_for("orgs.settings"))
    return render_template(
        "orgs/settings.html",
        rename_form=rename_form,
        delete_form=DeleteForm(formdata=None),
        role_form=RoleForm(formdata=None),
        members=accounts.members(),
    )


@bp.post("/settings/transfer")
@require_role(Role.OWNER)
def transfer_ownership():
    """Hand ownership to another member."""
    membership_id = request.form.get("membership_id", type=int)
    if not RoleForm(formdata=None).validate_on_submit() and membership_id is None:
        abort(400)
    _, error = _service_call(accounts.transfer_ownership, membership_id or 0, actor())
    flash(
        error.message if error else "Ownership transferred; you are now an admin.",
        "error" if error else "success",
    )
    return redirect(url_for("orgs.settings" if error else "orgs.members"))


@bp.post("/settings/delete")
@require_role(Role.OWNER)
def delete_organisation():
    """Delete the organisation and all its data."""
    form = DeleteForm()
    if form.validate_on_submit():
        name = g.organisation.name
        _, error = _service_call(accounts.delete_organisation, g.organisation, form.confirm.data)
        if not error:
            end_session()
            flash(f"{name} and all its data were deleted.", "success")
            return redirect(url_for("auth.login"))
        form_error(form, error)
    return render_template(
        "orgs/settings.html",
        rename_form=RenameForm(obj=g.organisation),
        delete_form=form,
        role_form=RoleForm(formdata=None),
        members=accounts.members(),
    ), 422


@bp.get("/audit")
@require_role(Role.ADMIN)
def audit_log():
    """The audit log, filtered by action, actor and dates."""
    form = AuditFilterForm(request.args)
    form.action.choices = [SelectChoice("", "Any action")] + [SelectChoice(a, a) for a in audit.actions()]
    form.validate()
    since = datetime.combine(form.since.data, time.min, UTC) if form.since.data else None
    until = datetime.combine(form.until.data, time.min, UTC) + timedelta(days=1) if form.until.data else None
    events = audit.search(
        action=form.action.data or None, actor_email=form.actor.data or None, since=since, until=until
    )
    return render("orgs/audit.html", "orgs/_audit_rows.html", form=form, events=events)
