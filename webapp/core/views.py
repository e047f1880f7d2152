"""Views of the core blueprint."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.core import bp
from webapp.extensions import csrf, db
from webapp.orgs.forms import NewOrganisationForm
from webapp.services import ServiceError, accounts
from webapp.services.accounts import memberships_of
from webapp.views import actor, form_error


@bp.get("/")
def index():
    """Signed in: the organisation overview (or a list to choose from); otherwise the landing page."""
    if current_user.is_authenticated:
        memberships = memberships_of(current_user)
        if len(memberships) == 1:
            return redirect(url_for("orgs.overview", org_slug=memberships[0].organisation.slug))
        return render_template("core/choose_org.html", memberships=memberships)
    return render_template("core/landing.html")


@bp.get("/healthz")
@csrf.exempt
def healthz():
    """200 while the process lives."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """200 only when the database and Redis both answer."""
    from webapp.queue import redis_connection

    checks = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the message helps the operator
        current_app.logger.warning("readyz database: %s", exc)
        checks["database"] = "unavailable"
    finally:
        db.session.rollback()
    try:
        redis_connection().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        current_app.logger.warning("readyz redis: %s", exc)
        checks["redis"] = "unavailable"
    status = 200 if all(v == "ok" for v in checks.values()) else 503
    return checks, status


@bp.get("/organisations/menu")
@login_required
def organisation_menu():
    """The top bar's organisation switcher, loaded when it is first opened (pages skip the query)."""
    return render_template(
        "core/_organisation_menu.html",
        memberships=memberships_of(current_user),
        current_slug=request.args.get("current", ""),
    )


@bp.route("/organisations/new", methods=["GET", "POST"])
@login_required
def new_organisation():
    """Create another organisation, owned by the signed-in user."""
    form = NewOrganisationForm()
    if form.validate_on_submit():
        try:
            org = accounts.create_organisation(
                form.organisation.data, current_user._get_current_object(), actor()
            )
        except ServiceError as error:
            form_error(form, error)
        else:
            flash(f"{org.name} is ready.", "success")
            return redirect(url_for("orgs.overview", org_slug=org.slug))
    return render_template("core/new_organisation.html", form=form)
