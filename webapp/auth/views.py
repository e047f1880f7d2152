"""Views of the auth blueprint."""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from webapp import tenancy
from webapp.auth import bp
from webapp.auth.forms import ConfirmForm, JoinNewUserForm, LoginForm, PasswordChangeForm, SignupForm
from webapp.extensions import limiter
from webapp.security import end_session, start_session
from webapp.services import ServiceError, accounts, invitations
from webapp.views import form_error


def _email_key() -> str:
    """The per-account limit's key: a digest, so neither Redis nor the limiter's log line holds the
    address (or a password typed into the email field)."""
    email = (request.form.get("email") or "").strip().lower()
    return "email:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _safe_next(default: str) -> str:
    target = request.args.get("next") or request.form.get("next") or ""
    parsed = urlparse(target)
    if target.startswith("/") and not target.startswith("//") and not parsed.netloc:
        return target
    return default


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_SIGNUP_PER_IP"], methods=["POST"])
def signup():
    """Create a user, an organisation and the owner membership."""
    form = SignupForm()
    if form.validate_on_submit():
        try:
            org = accounts.sign_up(
                form.email.data, form.password.data, form.organisation.data, request.remote_addr
            )
        except ServiceError as error:
            form_error(form, error)
        else:
            start_session(accounts.find_user_by_email(form.email.data))
            flash(f"Welcome to Journeylens. {org.name} is ready.", "success")
            return redirect(url_for("orgs.overview", org_slug=org.slug))
    return render_template("auth/signup.html", form=form), 422 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_PER_IP"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_PER_EMAIL"], methods=["POST"], key_func=_email_key)
def login():
    """Log in; the error never says whether the email exists."""
    form = LoginForm()
    if session.pop("expired", False):
        flash("Your session ended after a while without activity. Log in again.", "info")
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data, request.remote_addr)
        except ServiceError as error:
            flash(error.message, "error")
            return render_template("auth/login.html", form=form), 401
        start_session(user)
        return redirect(_safe_next(url_for("core.index")))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Log out here and end the user's other sessions."""
    accounts.log_out_everywhere(current_user._get_current_object())
    end_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """The user's own settings: password."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            accounts.change_password(user, form.current_password.data, form.password.data)
        except ServiceError as error:
            form_error(form, error)
        else:
            start_session(user)  # this browser stays signed in; every other session ends
            flash("Password changed. Your other sessions have been logged out.", "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form)


@bp.route("/join/<org_slug>/<secret>", methods=["GET", "POST"])
def join(org_slug: str, secret: str):
    """Accept an invitation: as the signed-in user, or by choosing a password for the invited email."""
    org = accounts.organisation_by_slug(org_slug)
    error_message = None
    invitation = None
    if org is None:
        error_message = "This invitation link is not valid. Ask an admin of the organisation for a new one."
    else:
        tenancy.activate(org.id, current_user.id if current_user.is_authenticated else None)
        try:
            invitation = invitations.find_by_secret(org, secret)
        except ServiceError as error:
            error_message = error.message
    if error_message:
        return render_template("auth/join.html", error_message=error_message, org=org), 404
    existing_user = accounts.find_user_by_email(invitation.email)
    confirm_form, new_user_form = ConfirmForm(), JoinNewUserForm()
    if request.method == "POST":
        try:
            if current_user.is_authenticated and confirm_form.validate_on_submit():
                invitations.accept(org, secret, current_user._get_current_object(), request.remote_addr)
                flash(f"You joined {org.name}.", "success")
                return redirect(url_for("orgs.overview", org_slug=org.slug))
            if (
                not current_user.is_authenticated
                and existing_user is None
                and new_user_form.validate_on_submit()
            ):
                user = invitations.accept_as_new_user(
                    org, secret, new_user_form.password.data, request.remote_addr
                )
                start_session(user)
                flash(f"Welcome. You joined {org.name}.", "success")
                return redirect(url_for("orgs.overview", org_slug=org.slug))
        except ServiceError as error:
            form_error(new_user_form, error)
    return render_template(
        "auth/join.html",
        org=org,
        invitation=invitation,
        existing_user=existing_user,
        confirm_form=confirm_form,
        new_user_form=new_user_form,
        error_message=None,
    )
